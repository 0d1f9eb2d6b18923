#!/usr/bin/env bash
# Builds the real SGX enclave (Fortanix EDP) and signs it:
#   ./scripts/sgx-build.sh [--debug] [--check-reproducible]
#
#   --debug               sign a DEBUG enclave (debuggable, never for production:
#                         a debugger can read its memory, so sealed keys are
#                         not protected)
#   --check-reproducible  build a second time in another target directory
#                         (target/sgx/build2, with its own std and libunwind:
#                         nothing of the first build is reused) and fail
#                         unless the MRENCLAVE is the same
#
# Environment:
#   SGX_SIGNING_KEY  RSA-3072 (e=3) PEM key that signs the enclave. Unset: a
#                    throwaway DEVELOPMENT key is generated once under
#                    target/sgx/dev-signing-key.pem.
#   SGX_ISVPRODID    ISVPRODID of the SIGSTRUCT (default 1)
#   SGX_ISVSVN       ISVSVN of the SIGSTRUCT (default 1); raise it with every
#                    security fix
#
# Steps: rust-src for -Zbuild-std (the target's prebuilt std is not
# installable everywhere); LLVM libunwind compiled from the toolchain's own
# sources with gcc (cached per rustc commit); the EDP tools at pinned
# versions; the enclave ELF; ftxsgx-elf2sgxs; sgxs-sign.
#
# The gcc-built libunwind is NOT LVI-hardened (Rust's official build of this
# target compiles it with clang and LVI mitigations). Enclaves from this
# script are for CI and measurements; build release enclaves with
# Dockerfile.sgx. See docs/sgx-build.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Enclave layout --------------------------------------------------------
# Heap, derived from crates/tmkms-light/tests/heap_peak.rs: it measures the
# peak live heap of one connection's thread on the real request path (node
# simulator <-TCP+SecretConnection-> net::connect + session::serve +
# ChainSigner + MemoryStore) and fails above two copies of the request plus
# 256 KiB (the frame buffer while the request is decoded, then the decoded
# extension next to its sign bytes). For a max-size frame (1,114,112 bytes,
# the enclave's cap) it measures 2,233,705 bytes (2.13 MiB) against a bound
# of 2 x 1,114,112 + 262,144 = 2,490,368 bytes (2.375 MiB). The heap is
# sized from the bound, so whatever the test lets through still fits:
#
#   HEAP_SIZE = ceil_MiB(connections x bound x fragmentation + runtime)
#             = ceil_MiB(2 x 2,490,368 x 2 + 1 MiB) = ceil_MiB(10.5 MiB) = 11 MiB
#
#   connections    2: a validator and one sentry (MAX_VALIDATOR_CONNECTIONS)
#                  may each hold a largest message at once;
#   fragmentation  2: the enclave's allocator (dlmalloc over one fixed
#                  region) can neither move blocks nor return memory;
#   runtime    1 MiB: settings, keys, logging, the state link (well under).
#
# 11 MiB is 2.6x the measured two-connection peak (4.26 MiB). The heap is
# committed EPC, so keep it no larger than needed. Assumes max_frame_bytes
# <= 1,114,112 (ENCLAVE_MAX_FRAME_BYTES, enforced by the enclave): a larger
# cap needs bound = 2 x cap + 256 KiB in the formula. One line of literal
# numbers, because Dockerfile.sgx evaluates this line on its own.
HEAP_SIZE=$(((2 * 2490368 * 2 + 1048576 + 1048575) / 1048576 * 1048576))
# Per thread. The same test's signing path (handshake, decode, ed25519,
# x25519) runs on a 16 KiB thread stack; 256 KiB leaves room for the main
# thread's settings parsing, log-filter setup and unwinding on a panic.
STACK_SIZE=$((256 * 1024))
# TCS count: main (init stream, then waits for the connection threads) + 2
# validator connections (validator + one sentry; net::run_all starts one
# thread per [[validator]]) + 1 state link + 1 logging (both run on the
# calling threads today: reserved so the app may move them to their own
# threads). EDP refuses a thread spawn beyond this count.
THREADS=5

FORTANIX_SGX_TOOLS_VERSION=0.6.4 # ftxsgx-elf2sgxs
SGXS_TOOLS_VERSION=0.10.0        # sgxs-sign

TARGET=x86_64-fortanix-unknown-sgx
PACKAGE=tmkms-light-sgx-app
BIN=tmkms-light-sgx-app
SGX_DIR=target/sgx
# ---------------------------------------------------------------------------

debug=0
check_reproducible=0
for arg in "$@"; do
  case "$arg" in
    --debug) debug=1 ;;
    --check-reproducible) check_reproducible=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "sgx-build: unknown argument \"$arg\"; use --debug and/or --check-reproducible (see --help)" >&2
      exit 2
      ;;
  esac
done

started=$SECONDS
say() { printf '== [%4ds] sgx-build: %s\n' "$((SECONDS - started))" "$*"; }
die() {
  echo "sgx-build: error: $*" >&2
  exit 1
}

for tool in cargo rustc rustup gcc g++ ar openssl; do
  command -v "$tool" >/dev/null || die "$tool not found; install it (Debian: build-essential, openssl; Rust: rustup)"
done

# --- rust-src --------------------------------------------------------------
sysroot=$(rustc --print sysroot)
rust_src="$sysroot/lib/rustlib/src/rust"
if [[ ! -d "$rust_src/library/std" ]]; then
  say "installing rust-src (needed by -Zbuild-std)"
  rustup component add rust-src
fi
libunwind_src="$rust_src/src/llvm-project/libunwind"
[[ -f "$libunwind_src/src/UnwindRustSgx.c" ]] ||
  die "$libunwind_src/src/UnwindRustSgx.c is missing; this toolchain's rust-src has no SGX libunwind sources"
rustc_commit=$(rustc -vV | sed -n 's/^commit-hash: //p')
[[ -n "$rustc_commit" ]] || die "cannot read rustc's commit hash from 'rustc -vV'"

# --- libunwind -------------------------------------------------------------
# build_libunwind <output dir>: compiles LLVM libunwind for the SGX target with
# the defines Rust's own build uses; deterministic archive (ar D).
build_libunwind() {
  local out=$1 obj src
  local tmp
  tmp=$(mktemp -d)
  local flags=(-O3 -fPIC -fstrict-aliasing -funwind-tables -fvisibility=hidden
    -D_LIBUNWIND_DISABLE_VISIBILITY_ANNOTATIONS -I"$libunwind_src/include"
    -fno-stack-protector -ffreestanding -fexceptions -U_FORTIFY_SOURCE
    -D_FORTIFY_SOURCE=0 -DRUST_SGX=1 -D__NO_STRING_INLINES -D__NO_MATH_INLINES
    -D_LIBUNWIND_IS_BAREMETAL -D__LIBUNWIND_IS_NATIVE_ONLY -DNDEBUG
    # No build paths in the objects.
    -ffile-prefix-map="$libunwind_src"=/libunwind)
  for src in Unwind-sjlj.c UnwindLevel1-gcc-ext.c UnwindLevel1.c UnwindRustSgx.c; do
    gcc "${flags[@]}" -std=c99 -c "$libunwind_src/src/$src" -o "$tmp/${src%.*}.o"
  done
  for src in UnwindRegistersRestore.S UnwindRegistersSave.S; do
    gcc "${flags[@]}" -c "$libunwind_src/src/$src" -o "$tmp/${src%.*}.o"
  done
  for src in Unwind-EHABI.cpp Unwind-seh.cpp libunwind.cpp; do
    gcc "${flags[@]}" -x c++ -std=c++11 -nostdinc++ -fno-exceptions -fno-rtti \
      -c "$libunwind_src/src/$src" -o "$tmp/${src%.*}.o"
  done
  mkdir -p "$out"
  rm -f "$out/libunwind.a"
  (cd "$tmp" && LC_ALL=C ar rcsD "$out/libunwind.a" $(LC_ALL=C ls ./*.o))
  rm -rf "$tmp"
}

libunwind_dir="$PWD/$SGX_DIR/libunwind-${rustc_commit:0:12}"
if [[ ! -f "$libunwind_dir/libunwind.a" ]]; then
  say "building libunwind from rust-src with gcc (NOT LVI-hardened) into $libunwind_dir"
  build_libunwind "$libunwind_dir"
fi

# --- EDP tools ---------------------------------------------------------------
# installed_version <crate>: the version `cargo install` recorded, or nothing
# (sgxs-sign prints no version of its own).
installed_version() {
  cargo install --list 2>/dev/null | sed -n "s/^$1 v\([0-9.]*\):\$/\1/p" | head -1
}
version_ge() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" == "$2" ]]; }
ensure_tool() {
  local binary=$1 crate=$2 version=$3 have
  have=$(installed_version "$crate")
  if ! command -v "$binary" >/dev/null || [[ -z "$have" ]] || ! version_ge "$have" "$version"; then
    command -v protoc >/dev/null ||
      die "protoc not found; the EDP tools need it to build (Debian: apt-get install protobuf-compiler)"
    say "installing $crate $version for $binary${have:+ (found $have)}; takes a few minutes"
    cargo install --locked "$crate" --version "$version"
  fi
}
ensure_tool ftxsgx-elf2sgxs fortanix-sgx-tools "$FORTANIX_SGX_TOOLS_VERSION"
ensure_tool sgxs-sign sgxs-tools "$SGXS_TOOLS_VERSION"

# --- signing key -------------------------------------------------------------
if [[ -n "${SGX_SIGNING_KEY:-}" ]]; then
  [[ -r "$SGX_SIGNING_KEY" ]] || die "SGX_SIGNING_KEY=$SGX_SIGNING_KEY is not a readable file"
  signing_key=$SGX_SIGNING_KEY
  dev_key=0
else
  signing_key="$SGX_DIR/dev-signing-key.pem"
  dev_key=1
  if [[ ! -f "$signing_key" ]]; then
    mkdir -p "$SGX_DIR"
    (umask 077 && openssl genrsa -3 -out "$signing_key" 3072 2>/dev/null) ||
      die "cannot generate the development signing key $signing_key with openssl"
  fi
fi
isvprodid=${SGX_ISVPRODID:-1}
isvsvn=${SGX_ISVSVN:-1}
[[ "$isvprodid" =~ ^[0-9]+$ && "$isvprodid" -le 65535 ]] || die "SGX_ISVPRODID=$isvprodid must be a number from 0 to 65535"
[[ "$isvsvn" =~ ^[0-9]+$ && "$isvsvn" -le 65535 ]] || die "SGX_ISVSVN=$isvsvn must be a number from 0 to 65535"

# --- build -------------------------------------------------------------------
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# build_elf <target dir> <libunwind dir>: builds <target dir>/$TARGET/release/$BIN.
# Paths that differ between machines or checkouts are remapped so they do not
# reach the binary (panic locations, file!()); rustc and cargo embed no
# timestamps.
build_elf() {
  local target_dir=$1 unwind_dir=$2
  local rustflags=(-L "native=$unwind_dir"
    --remap-path-prefix="$PWD=/tmkms-light"
    --remap-path-prefix="$cargo_home=/cargo"
    --remap-path-prefix="$sysroot=/rust")
  local abs_target
  abs_target=$(mkdir -p "$target_dir" && cd "$target_dir" && pwd)
  rustflags+=(--remap-path-prefix="$abs_target=/target")
  local encoded
  encoded=$(
    IFS=$'\x1f'
    echo "${rustflags[*]}"
  )
  say "building $PACKAGE for $TARGET in $target_dir (std from source)"
  RUSTC_BOOTSTRAP=1 CARGO_ENCODED_RUSTFLAGS=$encoded RUSTFLAGS='' \
    cargo build -Zbuild-std --target "$TARGET" --release -p "$PACKAGE" --bin "$BIN" \
    --locked --target-dir "$target_dir"
}

# The SIGSTRUCT's DATE field: the commit date (or SOURCE_DATE_EPOCH), not
# today, so the same commit and key give the same .sig.
if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
  sig_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d)
else
  sig_date=$(git log -1 --format=%cd --date=format-local:%Y%m%d 2>/dev/null || date -u +%Y%m%d)
fi

# convert_and_sign <elf> <output dir>: writes <output dir>/$BIN.sgxs and .sig.
# A release SIGSTRUCT sets ATTRIBUTES to MODE64BIT with a full mask, so EINIT
# refuses it with DEBUG set (sgxs-sign's default mask leaves DEBUG free, which
# would let a host launch the release enclave as a debuggable one).
convert_and_sign() {
  local elf=$1 out=$2
  local debug_flag=() attributes=(--attributes 0x4/0x0)
  [[ $debug == 1 ]] && debug_flag=(--debug) && attributes=()
  mkdir -p "$out"
  ftxsgx-elf2sgxs "$elf" --heap-size "$HEAP_SIZE" --stack-size "$STACK_SIZE" \
    --threads "$THREADS" "${debug_flag[@]}" --output "$out/$BIN.sgxs"
  sgxs-sign --key "$signing_key" --xfrm 7/0 --isvprodid "$isvprodid" --isvsvn "$isvsvn" \
    --date "$sig_date" "${attributes[@]}" "${debug_flag[@]}" "$out/$BIN.sgxs" "$out/$BIN.sig" >/dev/null
}

# SIGSTRUCT fields (Intel SDM vol. 3D, 38.13): MODULUS at byte 128 (384
# bytes, little endian; MRSIGNER is its SHA-256), ENCLAVEHASH (= MRENCLAVE)
# at byte 960 (32 bytes).
mrenclave_of() { od -An -v -tx1 -j960 -N32 "$1" | tr -d ' \n'; }
mrsigner_of() { tail -c +129 "$1" | head -c 384 | sha256sum | cut -d' ' -f1; }

if [[ $debug == 1 ]]; then out_dir="$SGX_DIR/enclave-debug"; else out_dir="$SGX_DIR/enclave"; fi
build_elf "$SGX_DIR/build" "$libunwind_dir"
elf="$SGX_DIR/build/$TARGET/release/$BIN"
say "converting (heap $HEAP_SIZE, stack $STACK_SIZE, $THREADS threads) and signing"
convert_and_sign "$elf" "$out_dir"
mrenclave=$(mrenclave_of "$out_dir/$BIN.sig")
mrsigner=$(mrsigner_of "$out_dir/$BIN.sig")
[[ ${#mrenclave} == 64 ]] || die "cannot read MRENCLAVE from $out_dir/$BIN.sig"

if [[ $check_reproducible == 1 ]]; then
  # Its own target directory, so its own std (-Zbuild-std) and its own
  # libunwind: nothing of the first build is reused.
  build2="$SGX_DIR/build2"
  say "reproducibility check: building again in $build2 with its own std and libunwind"
  unwind2="$PWD/$build2/libunwind"
  [[ -f "$unwind2/libunwind.a" ]] || build_libunwind "$unwind2"
  build_elf "$build2" "$unwind2"
  elf2="$build2/$TARGET/release/$BIN"
  convert_and_sign "$elf2" "$build2/enclave"
  mrenclave2=$(mrenclave_of "$build2/enclave/$BIN.sig")
  if [[ "$mrenclave" != "$mrenclave2" ]]; then
    echo "sgx-build: NOT REPRODUCIBLE: MRENCLAVE $mrenclave ($SGX_DIR/build) != $mrenclave2 ($build2)" >&2
    cmp "$elf" "$elf2" | head -1 >&2 || true
    exit 1
  fi
  say "reproducible: both builds give MRENCLAVE $mrenclave"
fi

echo
echo "MRENCLAVE  $mrenclave"
echo "MRSIGNER   $mrsigner"
echo "ISVPRODID  $isvprodid   ISVSVN $isvsvn   DEBUG $([[ $debug == 1 ]] && echo yes || echo no)"
echo "enclave    $out_dir/$BIN.sgxs"
echo "sigstruct  $out_dir/$BIN.sig"
echo "layout     heap $HEAP_SIZE bytes, stack $STACK_SIZE bytes, $THREADS threads"
if [[ $dev_key == 1 ]]; then
  echo
  echo "!! SIGNED WITH A THROWAWAY DEVELOPMENT KEY ($signing_key)."
  echo "!! Its MRSIGNER is not yours: data sealed to it is only as safe as that file."
  echo "!! Set SGX_SIGNING_KEY to your RSA-3072 (e=3) release key for real enclaves."
fi
if [[ $debug == 1 ]]; then
  echo "!! DEBUG enclave: a debugger can read its memory; never use it with real keys."
fi
echo "!! libunwind was built with gcc and is NOT LVI-hardened; build release enclaves with Dockerfile.sgx."
