#!/usr/bin/env bash
# Before/after of one credential rotation, measured on examples/fleet, for the operator guide.
# BEFORE: per-service layout, plain sops (decrypt to a pipe, jq, `sops set --value-stdin`) on every
# oci-creds.yaml. AFTER: the same fleet consolidated by ocitool, rotated with scripts/rotate.rhai.
# Usage: benches/rotation.sh   (OCITOOL=path/to/ocitool; default target/release/ocitool; needs jq, git)
# The new passwords live only in shell variables; they reach jq and sops through pipes, never argv,
# env or disk, and the run fails if one shows up in the scratch trees or in this script's output.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
OCITOOL=${OCITOOL:-$root/target/release/ocitool}
[[ $OCITOOL == /* ]] || OCITOOL=$root/$OCITOOL
export PATH="$root/.tools/bin:$PATH" SOPS_AGE_KEY_FILE="$root/examples/fleet/demo-keys/all.agekey"
for tool in sops jq git "$OCITOOL"; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
overlays=acme/applications/overlays
clusters=(prod dev)
# Each cluster pulls with its own robot account, so each gets its own new password (in memory only).
declare -A pw user
for c in "${clusters[@]}"; do pw[$c]=$(head -c 18 /dev/urandom | base64); done

# jq: the dockerconfigjson of a decrypted Secret (data or stringData), and the password it carries for $h.
defs='def cfg: if .data[".dockerconfigjson"] then .data[".dockerconfigjson"] | @base64d
               else .stringData[".dockerconfigjson"] end | fromjson;
      def pass: if (.data // .stringData)[".dockerconfigjson"] then cfg.auths[$h].password
                else .stringData.password // (.data.password | @base64d) end;'
# jq: the `sops set` index and JSON value that put $pw in place of $h's password, keeping the rest.
setv='def upd: .auths[$h] |= (.password = $pw | .auth = ("\(.username):\($pw)" | @base64));
  if .data[".dockerconfigjson"] then "[\"data\"][\".dockerconfigjson\"]", (cfg | upd | tojson | @base64 | tojson)
  elif .stringData[".dockerconfigjson"] then "[\"stringData\"][\".dockerconfigjson\"]", (cfg | upd | tojson | tojson)
  elif .stringData.password then "[\"stringData\"][\"password\"]", ($pw | tojson)
  else "[\"data\"][\"password\"]", ($pw | @base64 | tojson) end'
# Every sops process is counted through a file, since many run in pipes (subshells).
sops() { echo >>"$work/sops.calls"; command sops "$@"; }
sops_calls() { touch "$work/sops.calls"; wc -l <"$work/sops.calls"; rm "$work/sops.calls"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
commit() { git -C "$1" add -A && git -C "$1" -c user.name=bench -c user.email=bench@localhost commit -qm "$2"; }
fresh() { mkdir "$1" && cp -r "$root/examples/fleet/." "$1" && git -C "$1" init -q && commit "$1" "example fleet"; }
per_cluster() { # $1 repo: "prod N, dev N" = Secrets (oci-creds.yaml) changed since HEAD, per cluster
  local out=() c; for c in "${clusters[@]}"; do
    out+=("$c $(git -C "$1" diff --name-only | grep -c "^$overlays/$c/.*oci-creds\.yaml$" || true)"); done
  local IFS=,; echo "${out[*]}" | sed 's/,/, /g'
}
quiet() { "$@" >"$work/cmd.log" 2>&1 || { cat "$work/cmd.log" >&2; return 1; }; }

main() {
  # The registry and each cluster's username, read from a decrypted Secret through a pipe.
  local first c f path value t0 t1 t2
  first=$(find "$root/examples/fleet/$overlays/prod/services" -name oci-creds.yaml | sort | head -n1)
  host=$(command sops decrypt --output-type json "$first" | jq -r "$defs cfg.auths | keys[0]")
  for c in "${clusters[@]}"; do
    first=$(find "$root/examples/fleet/$overlays/$c/services" -name oci-creds.yaml | sort | head -n1)
    user[$c]=$(command sops decrypt --output-type json "$first" | jq -r --arg h "$host" "$defs cfg.auths[\$h].username")
  done
  echo "rotating $host (${clusters[*]}: ${user[*]}) on examples/fleet; machine: $(nproc) cores"

  # BEFORE: every per-service Secret whose service pulls from $host, one file after another.
  local before=$work/before; fresh "$before"; cd "$before"
  mapfile -t files < <(find "$overlays" -name oci-creds.yaml | sort | while read -r f; do
    if grep -qr "oci://$host" "$(dirname "$f")"; then echo "$f"; fi; done)
  sops_calls >/dev/null; t0=$(now)
  for f in "${files[@]}"; do
    c=${f#"$overlays"/}; c=${c%%/*}
    { read -r path; read -r value; } < <(sops decrypt --output-type json "$f" |
      jq -r --arg h "$host" --rawfile pw <(printf '%s' "${pw[$c]}") "$defs $setv")
    printf '%s' "$value" | sops set --value-stdin "$f" "$path"
  done
  t1=$(now); b_rot=$(sops_calls)
  for f in "${files[@]}"; do   # verification: each file decrypts and carries the new password
    c=${f#"$overlays"/}; c=${c%%/*}
    sops decrypt --output-type json "$f" |
      jq -e --arg h "$host" --rawfile pw <(printf '%s' "${pw[$c]}") "$defs pass == \$pw" >/dev/null ||
      { echo "BEFORE: $f does not carry the new password" >&2; exit 1; }
  done
  t2=$(now); b_ver=$(sops_calls)
  b_files=$(git diff --name-only | wc -l); b_secrets=$(per_cluster .)
  b_time="$(secs "$t0" "$t2") (rotation $(secs "$t0" "$t1") + verification $(secs "$t1" "$t2"))"

  # AFTER: a fresh copy, Reflector wired and consolidated (setup, not timed), then rotated.
  # The example's reflector.yaml is hand-written, so deploy-reflector refuses it without force=true.
  local after=$work/after; fresh "$after"; cd "$root"
  for c in "${clusters[@]}"; do
    quiet "$OCITOOL" run scripts/deploy-reflector.rhai --repo "$after" --set customer=acme --set cluster="$c" --set force=true
  done
  quiet "$OCITOOL" run scripts/consolidate.rhai --repo "$after" --set customer=acme
  commit "$after" "consolidated"
  # One rotate.rhai per cluster: it sets one username for every cluster it touches, and the
  # example's clusters use different robot accounts (with a shared account, omit cluster: 1 command).
  t0=$(now)
  for c in "${clusters[@]}"; do
    printf '%s' "${pw[$c]}" | "$OCITOOL" run scripts/rotate.rhai --repo "$after" --set customer=acme \
      --set cluster="$c" --set registry="$host" --set username="${user[$c]}" --set password_file=- --set verify_login=false
  done
  t1=$(now)
  "$OCITOOL" run scripts/validate.rhai --repo "$after" --set customer=acme
  t2=$(now)
  for c in "${clusters[@]}"; do   # not counted: our own proof that the source carries the new password
    command sops decrypt --output-type json "$after/$overlays/$c/flux-system/oci-creds.yaml" |
      jq -e --arg h "$host" --rawfile pw <(printf '%s' "${pw[$c]}") "$defs pass == \$pw" >/dev/null ||
      { echo "AFTER: $c source does not carry the new password" >&2; exit 1; }
  done
  a_files=$(git -C "$after" diff --name-only | wc -l); a_secrets=$(per_cluster "$after")
  a_time="$(secs "$t0" "$t2") (rotation $(secs "$t0" "$t1") + verification $(secs "$t1" "$t2"))"
  # Mirrors Reflector then updates in-cluster: the namespaces annotated on the (plaintext) metadata.
  mirrors=$(for c in "${clusters[@]}"; do
    printf '%s %s\n' "$c" "$(grep -h 'reflection-auto-namespaces' "$after/$overlays/$c/flux-system/oci-creds.yaml" |
      sed -E 's/.*: *"?([^"]*)"?/\1/' | tr ',' '\n' | grep -c .)"; done | paste -sd, - | sed 's/,/, /g')

  cat <<EOF

Rotation of $host on examples/fleet (acme: ${clusters[*]}, 12 services each); machine: $(nproc) cores

| | before: per-service Secrets, sops | after: consolidated, ocitool |
|---|---|---|
| files changed | $b_files | $a_files |
| commands run (rotation + verification) | $((b_rot + b_ver)) sops ($b_rot + $b_ver) | $((${#clusters[@]} + 1)) ocitool (${#clusters[@]} + 1) |
| Flux objects that change per cluster | Secrets: $b_secrets | Secrets: $a_secrets; then Reflector updates the mirrors in-cluster ($mirrors namespaces) |
| wall time (s) | $b_time | $a_time |
EOF
}

main 2>&1 | tee "$work/output.log"
# Fail loudly if a new password leaked into either tree (files and git index) or into the output.
for c in "${clusters[@]}"; do
  if grep -rqFf <(printf '%s\n' "${pw[$c]}") "$work"; then echo "LEAK: the new $c password is in $work" >&2; exit 1; fi
done
echo "leak check: new passwords absent from both trees and from this output"
