#!/usr/bin/env python3
"""Checks that the Grafana dashboard and the Prometheus rules name only the
metrics of the contract, deploy/metrics.txt.

A misspelt metric name in a PromQL expression is not an error anywhere else:
Prometheus and Grafana just find no series, the panel stays empty and the
alert never fires. So every expression is read here, and each metric, label
and function it names is looked up:

* metrics: a name of deploy/metrics.txt (counters with their _total suffix as
  listed; a histogram only as NAME_bucket, NAME_sum or NAME_count);
* labels in selectors: the metric's own labels, job and instance (added by
  the scrape) and le on _bucket series;
* labels in by/without/on/ignoring/group_left/group_right, in Grafana legends
  ({{label}}) and in alert annotations ($labels.label): a label of one of the
  metrics the expression names;
* functions: PromQL's functions and aggregations.

Read are: every panel target, templating query and annotation query of the
dashboards; every rule `expr` of the rule files (and metric names in their
annotation text); every input series and `expr` of promtool test files.

Usage (from anywhere; paths default to the repository's deploy/ files):
  scripts/check_metric_names.py [--metrics FILE] [--dashboard FILE]...
                                [--rules FILE]... [--rules-test FILE]...
  scripts/check_metric_names.py --self-test
  scripts/check_metric_names.py --export-dashboard-rules FILE [--dashboard FILE]...
      (the dashboards' queries as recording rules, for `promtool check rules`
      to parse them with Prometheus's own parser)
Exit status 0 when everything is known, 1 with one line per problem (file,
panel or alert, and the unknown name) otherwise. Python 3 standard library
only.
"""

import argparse
import difflib
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_METRICS = REPO / "deploy" / "metrics.txt"
DEFAULT_DASHBOARDS = sorted((REPO / "deploy" / "grafana").glob("*.json"))
DEFAULT_RULES = sorted((REPO / "deploy" / "prometheus").glob("*.rules.yml"))
DEFAULT_RULE_TESTS = sorted((REPO / "deploy" / "prometheus").glob("*.rules.test.yml"))

METRIC_TYPES = ("counter", "gauge", "histogram")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

AGGREGATIONS = frozenset(
    "sum min max avg group stddev stdvar count count_values bottomk topk "
    "quantile limitk limit_ratio".split()
)
FUNCTIONS = frozenset(
    "abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time "
    "ceil changes clamp clamp_max clamp_min cos cosh count_over_time day_of_month "
    "day_of_week day_of_year days_in_month deg delta deriv exp floor "
    "histogram_avg histogram_count histogram_fraction histogram_quantile "
    "histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta "
    "increase irate label_join label_replace last_over_time ln log10 log2 "
    "mad_over_time max_over_time min_over_time minute month pi "
    "predict_linear present_over_time quantile_over_time rad rate resets round "
    "scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt "
    "stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp "
    "vector year start end".split()
)
GROUPING = frozenset("by without on ignoring group_left group_right".split())
KEYWORDS = frozenset("and or unless bool offset atan2 inf nan".split())

TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$\w+|\[\[\w+\]\])
  | (?P<number>0[xX][0-9a-fA-F]+
      |(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],@:])
    """,
    re.VERBOSE,
)


class CheckError(Exception):
    """A problem in one expression; the caller adds where it was found."""


@dataclass(frozen=True)
class Series:
    """A series name that may appear in PromQL, and the labels it carries."""

    metric: str
    labels: frozenset


@dataclass
class Reference:
    """What one PromQL expression names."""

    series: list = field(default_factory=list)  # (series name, matcher labels)
    grouping: set = field(default_factory=set)
    functions: set = field(default_factory=set)


def load_contract(path):
    """Reads deploy/metrics.txt into {series name: Series}.

    The file is the one list of names the exporter and these files share, so
    a malformed line is an error here rather than a silently missing metric.
    """
    series = {}
    problems = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        parts = line.split(None, 3)
        if len(parts) < 4:
            problems.append(f"{where}: want `name type labels help`, got {line!r}")
            continue
        name, kind, labels, _help = parts
        label_set = frozenset() if labels == "-" else frozenset(labels.split(","))
        bad_labels = [label for label in label_set if not LABEL_RE.match(label)]
        if not NAME_RE.match(name) or not name.startswith("tmkms_light_"):
            problems.append(f"{where}: {name!r} is not a tmkms_light_ metric name")
        elif kind not in METRIC_TYPES:
            problems.append(f"{where}: type {kind!r} is not one of {', '.join(METRIC_TYPES)}")
        elif bad_labels:
            problems.append(f"{where}: bad label names {sorted(bad_labels)}")
        elif kind == "counter" and not name.endswith("_total"):
            problems.append(f"{where}: counter {name} does not end in _total")
        elif name in series:
            problems.append(f"{where}: {name} is listed twice")
        elif kind == "histogram":
            for suffix in HISTOGRAM_SUFFIXES:
                extra = {"le"} if suffix == "_bucket" else set()
                series[name + suffix] = Series(name, label_set | TARGET_LABELS | extra)
        else:
            series[name] = Series(name, label_set | TARGET_LABELS)
    if problems:
        raise SystemExit("\n".join(problems))
    if not series:
        raise SystemExit(f"{path}: no metrics listed")
    return series


def tokenize(expr):
    """Splits PromQL (with Grafana variables) into (kind, text) tokens."""
    tokens = []
    position = 0
    while position < len(expr):
        match = TOKEN_RE.match(expr, position)
        if not match:
            raise CheckError(f"cannot read the expression at {expr[position:position + 20]!r}")
        position = match.end()
        if match.lastgroup not in ("space", "comment"):
            tokens.append((match.lastgroup, match.group()))
    return tokens


def read_label_list(tokens, start):
    """Reads `( label, ... )` from tokens[start]; returns (labels, next index)."""
    labels = []
    index = start + 1
    while index < len(tokens) and tokens[index][1] != ")":
        kind, text = tokens[index]
        if kind == "ident":
            labels.append(text)
        elif text != ",":
            raise CheckError(f"unexpected {text!r} in a label list")
        index += 1
    if index == len(tokens):
        raise CheckError("unclosed label list")
    return labels, index + 1


def read_matchers(tokens, start):
    """Reads `{ label op "value", ... }` from tokens[start]; returns (labels, next index)."""
    labels = []
    index = start + 1
    while index < len(tokens) and tokens[index][1] != "}":
        kind, text = tokens[index]
        if kind == "ident" and index + 1 < len(tokens) and tokens[index + 1][1] in ("=", "!=", "=~", "!~"):
            labels.append(text)
            index += 3
        elif text == ",":
            index += 1
        else:
            raise CheckError(f"unexpected {text!r} in a label matcher")
    if index >= len(tokens):
        raise CheckError("unclosed label matcher")
    return labels, index + 1


def skip_brackets(tokens, start):
    """Skips a range or subquery `[ ... ]`; returns the index after it."""
    index = start
    while index < len(tokens) and tokens[index][1] != "]":
        index += 1
    if index == len(tokens):
        raise CheckError("unclosed [")
    return index + 1


def parse(expr):
    """What a PromQL expression names: series with their matcher labels,
    grouping labels and functions."""
    tokens = tokenize(expr)
    found = Reference()
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else None
        if text == "[":
            index = skip_brackets(tokens, index)
            continue
        if text == "{":
            raise CheckError("a selector without a metric name")
        if kind != "ident" or text in KEYWORDS:
            index += 1
            continue
        if text in GROUPING:
            if following == "(":
                labels, index = read_label_list(tokens, index + 1)
                found.grouping.update(labels)
            else:
                index += 1
            continue
        if text in FUNCTIONS or text in AGGREGATIONS:
            found.functions.add(text)
            index += 1
            continue
        if following == "(":
            raise CheckError(f"unknown function {text}")
        matchers = []
        index += 1
        if following == "{":
            matchers, index = read_matchers(tokens, index)
        found.series.append((text, matchers))
    return found


def check_expression(expr, contract, extra_labels=()):
    """Problems of one expression (an empty list when all is known).

    extra_labels: labels used around the expression (a Grafana legend, an
    alert's annotations) that must come from the metrics it names.
    """
    if not expr.strip():
        return ["empty query"]
    try:
        found = parse(expr)
    except CheckError as error:
        return [str(error)]
    problems = []
    available = set()
    for name, matchers in found.series:
        known = contract.get(name)
        if known is None:
            problems.append(f"unknown metric {name}{suggestion(name, contract)}")
            continue
        available |= known.labels
        for label in matchers:
            if label not in known.labels:
                problems.append(f"unknown label {label} on {name} (it has {', '.join(sorted(known.labels))})")
    if available:
        for label in sorted(found.grouping | set(extra_labels)):
            if label not in available:
                problems.append(f"unknown label {label} (the metrics named have {', '.join(sorted(available))})")
    return problems


def suggestion(name, contract):
    """` (did you mean X?)` for a near miss, so a typo is quick to fix."""
    close = difflib.get_close_matches(name, list(contract), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


# --- Grafana dashboards ----------------------------------------------------------

LEGEND_LABEL_RE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
LABEL_VALUES_RE = re.compile(r"^\s*label_values\(\s*(?:(?P<expr>.*),)?\s*(?P<label>[a-zA-Z_]\w*)\s*\)\s*$", re.S)
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def walk_panels(panels):
    """Every panel, including those inside (collapsed) rows."""
    for panel in panels or []:
        yield panel
        yield from walk_panels(panel.get("panels"))


def load_dashboard(path):
    """The dashboard's JSON, or None with the problem."""
    try:
        return json.loads(Path(path).read_text()), None
    except ValueError as error:
        return None, f"{path}: not JSON: {error}"


def dashboard_queries(where, dashboard):
    """(place, PromQL, labels used around it) of every query of a dashboard:
    panel targets (with the labels of their legend), templating variable
    queries (label_values(expr, label) gives expr and label) and annotation
    queries."""
    for panel in walk_panels(dashboard.get("panels")):
        if panel.get("type") == "row":
            continue
        label = f'{where}: panel "{panel.get("title", "?")}" (id {panel.get("id")})'
        for target in panel.get("targets") or []:
            legend = LEGEND_LABEL_RE.findall(target.get("legendFormat", ""))
            yield f'{label}, query {target.get("refId", "?")}', target.get("expr", ""), legend
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        place = f'{where}: variable "{variable.get("name")}"'
        match = LABEL_VALUES_RE.match(query or "")
        if match:
            yield place, match.group("expr") or "", [match.group("label")]
        else:
            yield place, query or "", []
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield f'{where}: annotation "{annotation.get("name")}"', annotation["expr"], []


def check_dashboard(path, contract):
    """Problems of one dashboard JSON: its queries and the shape the README
    promises (a ${DS_PROMETHEUS} datasource variable used by every panel)."""
    where = str(path)
    dashboard, problem = load_dashboard(path)
    if problem:
        return [problem]
    problems = []
    if not isinstance(dashboard.get("schemaVersion"), int):
        problems.append(f"{where}: no schemaVersion")
    variables = dashboard.get("templating", {}).get("list", [])
    if not any(v.get("name") == "DS_PROMETHEUS" and v.get("type") == "datasource" for v in variables):
        problems.append(f"{where}: no datasource variable DS_PROMETHEUS in templating")
    seen_ids = set()
    for panel in walk_panels(dashboard.get("panels")):
        label = f'{where}: panel "{panel.get("title", "?")}" (id {panel.get("id")})'
        if panel.get("id") in seen_ids:
            problems.append(f"{label}: duplicate panel id")
        seen_ids.add(panel.get("id"))
        if panel.get("type") == "row":
            continue
        if panel.get("datasource") != DATASOURCE:
            problems.append(f"{label}: datasource is not {DATASOURCE}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{label}: no query")
        for target in targets:
            if target.get("datasource", DATASOURCE) != DATASOURCE:
                problems.append(f'{label}, query {target.get("refId", "?")}: datasource is not {DATASOURCE}')
    for place, expr, around in dashboard_queries(where, dashboard):
        for problem in check_expression(expr, contract, around):
            problems.append(f"{place}: {problem}")
    return problems


GRAFANA_INTERVAL_RE = re.compile(r"\$\{?__(?:rate_interval|interval|range)\}?")
GRAFANA_VARIABLE_RE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")


def export_dashboard_rules(dashboards, out):
    """Writes every dashboard query as a recording rule (JSON, which is YAML)
    so that `promtool check rules` parses it with Prometheus's own parser.
    Grafana's interval macros become 1m and other variables `.*` (the
    dashboards use them only inside regex matchers)."""
    rules = []
    for path in dashboards:
        dashboard, problem = load_dashboard(path)
        if problem:
            raise SystemExit(problem)
        for place, expr, _ in dashboard_queries(str(path), dashboard):
            promql = GRAFANA_VARIABLE_RE.sub(".*", GRAFANA_INTERVAL_RE.sub("1m", expr))
            # The record name is what promtool prints on a parse error.
            name = re.sub(r"[^A-Za-z0-9_]+", "_", place.split(": ", 1)[-1]).strip("_")
            rules.append({"record": f"dashboard:{name}", "expr": promql})
    Path(out).write_text(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}, indent=1))
    return len(rules)


# --- Prometheus rule and rule test files -------------------------------------------

KEY_RE = re.compile(r"^(?P<indent>\s*)(?:-\s+)?(?P<key>[A-Za-z_]+):(?:\s+(?P<value>.*))?$")
TEMPLATE_LABEL_RE = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")
PROSE_METRIC_RE = re.compile(r"\btmkms_light_[a-z0-9_]+")


def indent_of(line):
    return len(line) - len(line.lstrip())


def yaml_scalar(lines, index, value):
    """The scalar of `key: value` at lines[index] (plain, quoted or a block
    `|`/`>` scalar on the following, more indented lines); returns (text, next
    index). Enough YAML for rule files, which the standard library cannot read."""
    value = (value or "").strip()
    if value[:1] in ("|", ">"):
        own_indent = indent_of(lines[index])
        block = []
        index += 1
        while index < len(lines) and (not lines[index].strip() or indent_of(lines[index]) > own_indent):
            block.append(lines[index].strip())
            index += 1
        return "\n".join(block), index
    if value.startswith("'") and value.endswith("'") and len(value) > 1:
        return value[1:-1].replace("''", "'"), index + 1
    if value.startswith('"') and value.endswith('"') and len(value) > 1:
        try:
            return json.loads(value), index + 1
        except ValueError:
            return value[1:-1], index + 1
    return re.sub(r"\s+#.*$", "", value), index + 1


def yaml_entries(path):
    """(key, scalar value, line number) of every `key: value` line of a file."""
    lines = Path(path).read_text().splitlines()
    index = 0
    while index < len(lines):
        match = KEY_RE.match(lines[index])
        if not match or lines[index].lstrip().startswith("#"):
            index += 1
            continue
        number = index + 1
        value, index = yaml_scalar(lines, index, match.group("value"))
        yield match.group("key"), value, number


def check_rules(path, contract):
    """Problems of a rule file: each rule's expr, the $labels its annotations
    use, and metric names mentioned in its annotation text."""
    problems = []
    rule = None
    pending = []  # (rule, expr, labels used in annotations, metrics in text)

    for key, value, number in yaml_entries(path):
        if key in ("alert", "record"):
            rule = {"name": f"{key} {value}", "expr": None, "labels": set(), "prose": set(), "line": number}
            pending.append(rule)
        elif rule is None:
            continue
        elif key == "expr":
            rule["expr"] = value
        else:
            rule["labels"].update(TEMPLATE_LABEL_RE.findall(value))
            rule["prose"].update(PROSE_METRIC_RE.findall(value))
    for rule in pending:
        where = f'{path}:{rule["line"]}: {rule["name"]}'
        if not rule["expr"]:
            problems.append(f"{where}: no expr")
            continue
        for problem in check_expression(rule["expr"], contract, rule["labels"]):
            problems.append(f"{where}: {problem}")
        for name in sorted(rule["prose"]):
            if name not in contract and not any(s.metric == name for s in contract.values()):
                problems.append(f"{where}: annotation names unknown metric {name}{suggestion(name, contract)}")
    return problems


def check_rule_tests(path, contract):
    """Problems of a promtool test file: its input series and PromQL tests."""
    problems = []
    for key, value, number in yaml_entries(path):
        if key in ("series", "expr"):
            for problem in check_expression(value, contract):
                problems.append(f"{path}:{number}: {key} {value!r}: {problem}")
    return problems


def run_checks(metrics, dashboards, rules, rule_tests):
    contract = load_contract(metrics)
    problems = []
    for path in dashboards:
        problems += check_dashboard(path, contract)
    for path in rules:
        problems += check_rules(path, contract)
    for path in rule_tests:
        problems += check_rule_tests(path, contract)
    return problems


# --- self-test ----------------------------------------------------------------------

SELF_TEST_CONTRACT = """\
# name type labels help
tmkms_light_a_total counter chain_id,code A counter.
tmkms_light_b_seconds histogram chain_id A histogram.
tmkms_light_c gauge - A gauge.
"""


def self_test():
    """Expressions that must pass and expressions that must fail, with the
    words the failure must contain; exits 1 if any case goes the other way."""
    good = [
        'sum by (code) (increase(tmkms_light_a_total{chain_id=~"$chain_id"}[$__rate_interval]))',
        "histogram_quantile(0.99, sum by (le, chain_id) (rate(tmkms_light_b_seconds_bucket[5m]))) > 0.05",
        "rate(tmkms_light_b_seconds_sum[1m]) / rate(tmkms_light_b_seconds_count[1m])",
        "tmkms_light_c == 0 and on (instance) tmkms_light_a_total offset 5m > 0",
        "absent(tmkms_light_c)",
        "sum(tmkms_light_a_total) by (job)",
        "max_over_time(tmkms_light_c[1h30m:1m]) # a comment naming tmkms_light_nope",
    ]
    bad = [
        ("rate(tmkms_light_a_totl[5m])", "unknown metric tmkms_light_a_totl (did you mean tmkms_light_a_total?)"),
        ("rate(tmkms_light_a[5m])", "unknown metric tmkms_light_a"),
        ("rate(tmkms_light_a_total_bucket[5m])", "unknown metric tmkms_light_a_total_bucket"),
        ("tmkms_light_b_seconds", "unknown metric tmkms_light_b_seconds"),
        ('tmkms_light_c{chain_id="x"}', "unknown label chain_id on tmkms_light_c"),
        ('tmkms_light_a_total{le="1"}', "unknown label le on tmkms_light_a_total"),
        ("sum by (chian_id) (tmkms_light_a_total)", "unknown label chian_id"),
        ("rat(tmkms_light_a_total[5m])", "unknown function rat"),
        ('{__name__="tmkms_light_c"}', "a selector without a metric name"),
        ("tmkms_light_c ?", "cannot read"),
    ]
    failures = []
    with tempfile.TemporaryDirectory() as scratch:
        contract_path = Path(scratch) / "metrics.txt"
        contract_path.write_text(SELF_TEST_CONTRACT)
        contract = load_contract(contract_path)
        for expr in good:
            problems = check_expression(expr, contract)
            if problems:
                failures.append(f"should pass: {expr!r}: {problems}")
        for expr, words in bad:
            problems = check_expression(expr, contract)
            if not any(words in problem for problem in problems):
                failures.append(f"should fail with {words!r}: {expr!r}: got {problems}")
        legend = check_expression("tmkms_light_a_total", contract, ["cdoe"])
        if not any("unknown label cdoe" in p for p in legend):
            failures.append(f"a legend label typo should fail: got {legend}")
        file_cases, file_failures = self_test_files(Path(scratch), contract_path)
        failures += file_failures
    for failure in failures:
        print(f"self-test FAILED: {failure}")
    total = len(good) + len(bad) + 1 + file_cases
    print(f"self-test: {total - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def self_test_files(scratch, contract_path):
    """A dashboard, a rule file and a rule test file, each with one typo,
    must each report it with the panel, alert or line it is in. Returns
    (number of cases, failures)."""
    dashboard = {
        "schemaVersion": 39,
        "templating": {"list": [{"name": "DS_PROMETHEUS", "type": "datasource", "query": "prometheus"}]},
        "panels": [
            {"id": 1, "type": "row", "title": "Row", "panels": [
                {"id": 2, "type": "timeseries", "title": "Latency", "datasource": DATASOURCE,
                 "targets": [{"refId": "A", "datasource": DATASOURCE, "expr": "rate(tmkms_light_b_second_count[5m])"}]},
            ]},
        ],
    }
    (scratch / "d.json").write_text(json.dumps(dashboard))
    (scratch / "r.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Demo\n        expr: >-\n"
        "          increase(tmkms_light_a_total[5m])\n          > 0\n"
        "        annotations:\n          summary: \"{{ $labels.code }} {{ $labels.cdoe }}\"\n"
        "          description: see tmkms_light_c and tmkms_light_b_seconds, not tmkms_light_d\n"
    )
    (scratch / "t.yml").write_text(
        "tests:\n  - input_series:\n      - series: 'tmkms_light_c{chain_id=\"x\"}'\n        values: '1'\n"
    )
    cases = [
        (run_checks(contract_path, [scratch / "d.json"], [], []),
         ['panel "Latency" (id 2), query A: unknown metric tmkms_light_b_second_count']),
        (run_checks(contract_path, [], [scratch / "r.yml"], []),
         ["r.yml:4: alert Demo: unknown label cdoe",
          "r.yml:4: alert Demo: annotation names unknown metric tmkms_light_d"]),
        (run_checks(contract_path, [], [], [scratch / "t.yml"]),
         ["t.yml:3: series"]),
    ]
    failures = []
    for problems, expected in cases:
        missing = [words for words in expected if not any(words in problem for problem in problems)]
        if missing or len(problems) != len(expected):
            failures.append(f"want the problems {expected!r}: got {problems}")
    return len(cases), failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", default=DEFAULT_METRICS, help="the metric contract (deploy/metrics.txt)")
    parser.add_argument("--dashboard", action="append", help="Grafana dashboard JSON (default: deploy/grafana/*.json)")
    parser.add_argument("--rules", action="append", help="Prometheus rule file (default: deploy/prometheus/*.rules.yml)")
    parser.add_argument("--rules-test", action="append", help="promtool test file (default: deploy/prometheus/*.rules.test.yml)")
    parser.add_argument("--self-test", action="store_true", help="check this checker on built-in good and bad inputs")
    parser.add_argument("--export-dashboard-rules", metavar="FILE",
                        help="write the dashboards' queries as a rule file for `promtool check rules`")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if args.export_dashboard_rules:
        count = export_dashboard_rules(args.dashboard or DEFAULT_DASHBOARDS, args.export_dashboard_rules)
        print(f"check_metric_names: {count} dashboard queries written to {args.export_dashboard_rules}")
        return 0
    explicit = args.dashboard or args.rules or args.rules_test
    dashboards = args.dashboard or ([] if explicit else DEFAULT_DASHBOARDS)
    rules = args.rules or ([] if explicit else DEFAULT_RULES)
    rule_tests = args.rules_test or ([] if explicit else DEFAULT_RULE_TESTS)
    problems = run_checks(args.metrics, dashboards, rules, rule_tests)
    for problem in problems:
        print(problem)
    checked = len(dashboards) + len(rules) + len(rule_tests)
    if problems:
        print(f"check_metric_names: {len(problems)} problem(s) in {checked} file(s)", file=sys.stderr)
        return 1
    print(f"check_metric_names: {checked} file(s) name only metrics of {args.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
