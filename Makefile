# ocitool — every command installs what it needs first (.ci/install-tools: pinned sops, age,
# kubeconform into .tools/bin; kubectl and Go must be on the machine).
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
DEMO_DIR ?= $(CURDIR)/target/demo-fleet

.PHONY: setup demo test e2e lint bench rotation-compare fixtures

setup:
	.ci/install-tools
	cargo build --release --locked

## demo: consolidate acme/prod on a scratch copy of examples/fleet and show what changed.
demo: setup
	rm -rf "$(DEMO_DIR)" && cp -r examples/fleet "$(DEMO_DIR)"
	cd "$(DEMO_DIR)" && git init -q && git add -A && git -c user.email=demo@example.com -c user.name=demo commit -qm "example fleet"
	SOPS_AGE_KEY_FILE="$(DEMO_DIR)/demo-keys/all.agekey" target/release/ocitool run scripts/consolidate.rhai \
	  --repo "$(DEMO_DIR)" --set customer=acme --set cluster=prod
	cd "$(DEMO_DIR)" && git status --short && git diff --stat

## test: every test (unit, integration, property) with the real sops, age, kubectl and kubeconform.
## Property 7 runs PROPTEST_CASES cases: 16 by default (.cargo/config.toml), 100 in CI (.ci/run);
## `PROPTEST_CASES=100 make test` runs it as CI does. Integration tests: `cargo test --test integration`.
## Golden files (tests/integration/golden, manifests/, docs/scripting.md): OCITOOL_BLESS=1 rewrites them.
test:
	.ci/install-tools
	cargo test --workspace --locked
	cargo fmt --all -- --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

## e2e: the live tier. .ci/install-live-tools builds the pinned registry, crane, helm, etcd,
## kube-apiserver and kube-controller-manager into .tools/bin (about 10 min and 1.8 GB cold, needs
## Go; idempotent); then the #[ignore]d tests (tests/integration/e2e/, devkit's live::) start them on
## 127.0.0.1 and stop them by pid; .ci/e2e checks that none is left.
e2e:
	.ci/e2e

bench:
	.ci/install-tools
	cargo bench --bench consolidate
	cargo bench --bench validate

## rotation-compare: one credential rotation on examples/fleet, per-service sops vs consolidated ocitool (needs jq).
rotation-compare: setup
	OCITOOL=target/release/ocitool benches/rotation.sh

## fixtures: regenerate examples/fleet (keeps its demo keys).
fixtures:
	.ci/install-tools
	cargo run --example generate_fleet -- examples/fleet
