use tmkms_light_sgx_seal::seal::{seal_key_request, SEAL_ATTRIBUTE_MASK};
use tmkms_light_sgx_seal::sgx_isa::{AttributesFlags, Keyname, Keypolicy, Keyrequest, Targetinfo};
use tmkms_light_sgx_seal::testing::{
    other_test_signing_key, sign_test_sigstruct, test_cpu, test_signing_key, TEST_CPUSVN,
};
use tmkms_light_sgx_seal::{
    EnclaveIdentity, HwError, SgxHardware, SimulatedCpu, SimulatedHardware,
};

use super::{enclave, enclave_on};

fn seal_request(isvsvn: u16, cpusvn: [u8; 16]) -> Keyrequest {
    seal_key_request(isvsvn, cpusvn, [7; 32])
}

#[test]
fn rejects_isvsvn_above_the_enclaves_own() {
    let hw = enclave(test_signing_key(), 5, false, 1);
    assert!(hw.egetkey(&seal_request(5, TEST_CPUSVN)).is_ok());
    assert!(hw.egetkey(&seal_request(0, TEST_CPUSVN)).is_ok());
    assert_eq!(
        hw.egetkey(&seal_request(6, TEST_CPUSVN)).unwrap_err(),
        HwError::IsvsvnTooHigh {
            requested: 6,
            own: 5
        }
    );
    // Older versions' keys are distinct keys, not the same one.
    assert_ne!(
        *hw.egetkey(&seal_request(4, TEST_CPUSVN)).unwrap(),
        *hw.egetkey(&seal_request(5, TEST_CPUSVN)).unwrap()
    );
}

#[test]
fn rejects_cpusvn_above_the_cpus_own() {
    let hw = enclave(test_signing_key(), 1, false, 1);
    for i in 0..16 {
        let mut higher = TEST_CPUSVN;
        higher[i] += 1;
        assert!(
            matches!(
                hw.egetkey(&seal_request(1, higher)),
                Err(HwError::CpusvnTooHigh { .. })
            ),
            "component {i}"
        );
    }
    let mut lower = TEST_CPUSVN;
    lower[3] -= 1;
    let older = hw.egetkey(&seal_request(1, lower)).unwrap();
    assert_ne!(*older, *hw.egetkey(&seal_request(1, TEST_CPUSVN)).unwrap());
}

#[test]
fn rejects_unknown_and_unavailable_key_names_and_reserved_bits() {
    let hw = enclave(test_signing_key(), 1, false, 1);
    for keyname in [
        Keyname::Einittoken as u16,
        Keyname::Provision as u16,
        Keyname::ProvisionSeal as u16,
        5,
        0xffff,
    ] {
        let mut req = seal_request(1, TEST_CPUSVN);
        req.keyname = keyname;
        assert_eq!(
            hw.egetkey(&req).unwrap_err(),
            HwError::InvalidKeyname { keyname }
        );
    }
    let mut req = seal_request(1, TEST_CPUSVN);
    req._reserved2[100] = 1;
    assert!(matches!(hw.egetkey(&req), Err(HwError::ReservedBitsSet(_))));
    let mut req = seal_request(1, TEST_CPUSVN);
    req._reserved1 = 1;
    assert!(matches!(hw.egetkey(&req), Err(HwError::ReservedBitsSet(_))));
}

#[test]
fn key_policy_selects_which_measurement_binds_the_key() {
    let signer = test_signing_key();
    let cpu = || SimulatedCpu::new([9; 32], TEST_CPUSVN);
    let load = |hash: [u8; 32]| {
        let sig = sign_test_sigstruct(signer, hash, 1, 1, false).unwrap();
        SimulatedHardware::new(EnclaveIdentity::from_sigstruct(&sig).unwrap(), cpu())
    };
    let a = load([1; 32]);
    let b = load([2; 32]);
    let mut req = seal_request(1, TEST_CPUSVN);
    // MRSIGNER policy: two enclaves of one signer share the key.
    assert_eq!(*a.egetkey(&req).unwrap(), *b.egetkey(&req).unwrap());
    // MRENCLAVE policy: they do not.
    req.keypolicy = Keypolicy::MRENCLAVE;
    assert_ne!(*a.egetkey(&req).unwrap(), *b.egetkey(&req).unwrap());
    // Another signer never shares an MRSIGNER key.
    let c = enclave_on(other_test_signing_key(), 1, false, cpu());
    req.keypolicy = Keypolicy::MRSIGNER;
    assert_ne!(*a.egetkey(&req).unwrap(), *c.egetkey(&req).unwrap());
    // The key id is an input.
    let mut other_id = req.clone();
    other_id.keyid = [8; 32];
    assert_ne!(*a.egetkey(&req).unwrap(), *a.egetkey(&other_id).unwrap());
}

#[test]
fn debug_attribute_binds_the_key_only_when_masked_in() {
    let signer = test_signing_key();
    let prod = enclave(signer, 1, false, 1);
    let debug = enclave(signer, 1, true, 1);
    let mut req = seal_request(1, TEST_CPUSVN);
    assert!(
        AttributesFlags::from_bits_truncate(req.attributemask[0]).contains(AttributesFlags::DEBUG)
    );
    assert_eq!(req.attributemask[0], SEAL_ATTRIBUTE_MASK.bits());
    assert_ne!(*prod.egetkey(&req).unwrap(), *debug.egetkey(&req).unwrap());
    req.attributemask[0] &= !AttributesFlags::DEBUG.bits();
    assert_eq!(*prod.egetkey(&req).unwrap(), *debug.egetkey(&req).unwrap());
}

#[test]
fn another_cpu_secret_gives_other_keys() {
    let req = seal_request(1, TEST_CPUSVN);
    let one = enclave(test_signing_key(), 1, false, 1);
    let two = enclave(test_signing_key(), 1, false, 2);
    assert_ne!(*one.egetkey(&req).unwrap(), *two.egetkey(&req).unwrap());
}

#[test]
fn reports_carry_identity_and_verify_only_at_their_target() {
    let app = enclave(test_signing_key(), 4, false, 1);
    // A "quoting enclave" (another MRENCLAVE: REPORT keys follow MRENCLAVE)
    // on the same CPU.
    let qe = quoting_enclave(1);
    let qe_target = Targetinfo::from(qe.self_report().unwrap());
    let data = [0xab; 64];
    let report = app.report(&qe_target, &data).unwrap();
    assert_eq!(report.reportdata, data);
    assert_eq!(report.mrenclave, app.identity().mrenclave);
    assert_eq!(report.mrsigner, app.identity().mrsigner);
    assert_eq!(report.isvsvn, 4);
    assert_eq!(report.cpusvn, TEST_CPUSVN);
    assert_eq!(EnclaveIdentity::from_report(&report), *app.identity());

    qe.verify_report(&report).unwrap();
    // Not for the app itself, nor for the QE on another CPU.
    assert_eq!(app.verify_report(&report), Err(HwError::ReportMacMismatch));
    let qe_elsewhere = quoting_enclave(2);
    assert_eq!(
        qe_elsewhere.verify_report(&report),
        Err(HwError::ReportMacMismatch)
    );
    // Any change to the MACed part breaks it.
    let mut forged = report.clone();
    forged.reportdata[0] ^= 1;
    assert_eq!(qe.verify_report(&forged), Err(HwError::ReportMacMismatch));
    let mut forged = report;
    forged.isvsvn = 9;
    assert_eq!(qe.verify_report(&forged), Err(HwError::ReportMacMismatch));
}

fn quoting_enclave(cpu: u8) -> SimulatedHardware {
    let sig = sign_test_sigstruct(other_test_signing_key(), [0x9e; 32], 2, 1, false).unwrap();
    SimulatedHardware::new(
        EnclaveIdentity::from_sigstruct(&sig).unwrap(),
        test_cpu(cpu),
    )
}

#[test]
fn debug_output_redacts_the_cpu_secret() {
    let cpu = SimulatedCpu::new([0xee; 32], TEST_CPUSVN);
    let hw = enclave_on(test_signing_key(), 1, false, cpu.clone());
    for text in [format!("{cpu:?}"), format!("{hw:?}")] {
        assert!(text.contains("redacted"), "{text}");
        assert!(
            !text.contains("eeee") && !text.contains("238, 238"),
            "{text}"
        );
    }
}
