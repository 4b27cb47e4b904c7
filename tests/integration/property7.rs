//! Property 7: for random cluster structures, really sops-encrypted, consolidation leaves exactly
//! one `oci-creds.yaml` (in flux-system), none in service directories, every kustomization still
//! builds, the decrypted source holds exactly the merged auths, and both Reflector annotation
//! lists equal the expected namespace set. Each case is a full run of the real binary; how many
//! comes from PROPTEST_CASES (16 locally through .cargo/config.toml, 100 in CI through .ci/run).

use crate::support;

use ocitool_devkit::fleetgen::{
    ClusterSpec, FleetSpec, NamespaceVia, Registry, ResourceSpelling, SecretForm, ServiceSpec,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use support::Fleet;

/// A registry always carries the same credentials, so equal registries merge and never conflict.
fn registry_pool() -> Vec<Registry> {
    vec![
        Registry::new("harbor.example.com", "robot$flux", "prop7-harbor-S3cr3tA"),
        Registry::new("ghcr.io", "bot", "prop7-ghcr-S3cr3tB"),
        Registry::new("registry.example.org:5000", "svc", "prop7-org-S3cr3tC"),
    ]
}

const NAMESPACES: [&str; 4] = ["apps", "observability", "platform-system", "team-a"];

fn service(index: usize) -> impl Strategy<Value = ServiceSpec> {
    let forms = prop_oneof![
        Just(SecretForm::DockerConfigData),
        Just(SecretForm::DockerConfigStringData),
        Just(SecretForm::BasicAuth)
    ];
    let via = prop_oneof![
        Just(NamespaceVia::FluxTargetNamespace),
        Just(NamespaceVia::KustomizationNamespace),
        Just(NamespaceVia::SecretMetadata)
    ];
    (
        0..NAMESPACES.len(),
        via,
        forms,
        proptest::sample::subsequence((0..3).collect::<Vec<_>>(), 1..=3),
        0..ResourceSpelling::ALL.len(),
        proptest::bool::weighted(0.9),
        any::<bool>(),
    )
        .prop_map(move |(ns, via, form, regs, spelling, encrypted, crlf)| {
            let pool = registry_pool();
            let registries: Vec<Registry> = match form {
                SecretForm::BasicAuth => vec![pool[regs[0]].clone()],
                _ => regs.iter().map(|i| pool[*i].clone()).collect(),
            };
            ServiceSpec {
                name: format!("svc{index}"),
                namespace: NAMESPACES[ns].to_string(),
                via,
                form,
                registries,
                spelling: ResourceSpelling::ALL[spelling],
                encrypted,
                crlf,
            }
        })
}

fn cluster() -> impl Strategy<Value = ClusterSpec> {
    (1usize..=5, any::<bool>()).prop_flat_map(|(count, with_customer)| {
        let services: Vec<_> = (0..count).map(service).collect();
        services.prop_map(move |services| ClusterSpec {
            customer: with_customer.then(|| "cust".to_string()),
            name: "c1".to_string(),
            services,
            deploys_reflector: true,
        })
    })
}

fn kustomization_dirs(fleet: &Fleet) -> Vec<std::path::PathBuf> {
    fleet
        .find("kustomization.yaml")
        .into_iter()
        .map(|p| fleet.path().join(p).parent().unwrap().to_path_buf())
        .collect()
}

proptest! {
    // `cases` is left to ProptestConfig::default(), which reads PROPTEST_CASES.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn consolidation_leaves_exactly_one_source_with_the_merged_auths(spec in cluster()) {
        let fleet = Fleet::generated(&FleetSpec { clusters: vec![spec.clone()] });
        let mut run = fleet.run("consolidate.rhai").set("cluster", "c1");
        if let Some(customer) = &spec.customer {
            run = run.set("customer", customer);
        }
        let needles = FleetSpec { clusters: vec![spec.clone()] }.passwords();
        run.succeeds().leaks_none(&needles);

        let overlay = spec.overlay_path();
        let source = format!("{overlay}/flux-system/oci-creds.yaml");
        prop_assert_eq!(fleet.find("oci-creds.yaml"), vec![source.clone()]);
        for dir in kustomization_dirs(&fleet) {
            prop_assert!(ocitool_adapters::kustomize::build(&dir).is_ok(), "{} no longer builds", dir.display());
        }

        let plain = fleet.decrypt(&source);
        let got = ocitool_core::secret::read_source("source", &plain).unwrap();
        let expected_ns: BTreeSet<String> = spec.services.iter().map(|s| s.namespace.clone()).collect();
        let expected_ns: Vec<String> = expected_ns.into_iter().collect();
        prop_assert_eq!(got.namespaces(), &expected_ns[..]);
        let list = expected_ns.join(",");
        let annotations = got.found_annotations().cloned().unwrap();
        prop_assert_eq!(annotations.get(ocitool_core::reflector::ALLOWED_NAMESPACES), Some(&list));
        prop_assert_eq!(annotations.get(ocitool_core::reflector::AUTO_NAMESPACES), Some(&list));

        let mut expected_auths: BTreeMap<String, String> = BTreeMap::new();
        for service in &spec.services {
            for r in &service.registries {
                let fp = ocitool_core::creds::Credentials::from_basic_auth("x", &r.host, &r.username, &r.password)
                    .fingerprint(&r.host)
                    .unwrap();
                expected_auths.insert(r.host.clone(), fp);
            }
        }
        let got_auths: BTreeMap<String, String> = got
            .credentials
            .registries()
            .into_iter()
            .map(|r| (r.clone(), got.credentials.fingerprint(&r).unwrap()))
            .collect();
        prop_assert_eq!(got_auths, expected_auths);
        // Only the unencrypted inputs ever held plaintext on disk; after consolidation none remains.
        fleet.assert_no_plaintext(&needles);
    }
}
