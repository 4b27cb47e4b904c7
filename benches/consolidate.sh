#!/usr/bin/env bash
# The naive baseline for benches/consolidate.rs: consolidate every overlay of a fleet the way one
# would by hand, one process after another, with sops, jq, sed and find. Usage: consolidate.sh FLEET
# (sops, jq on PATH; SOPS_AGE_KEY_FILE set). Approximate on purpose: namespaces come from the
# Secret (or the service directory), basic-auth registries from the first oci:// URL next to it.
set -euo pipefail
cd "$1"
reflector=reflector.v1.k8s.emberstack.com
for overlay in */applications/overlays/*/; do
  overlay=${overlay%/}
  auths='{}'
  namespaces=()
  while IFS= read -r file; do
    dir=$(dirname "$file")
    json=$(sops decrypt --output-type json "$file")
    ns=$(jq -r '.metadata.namespace // empty' <<<"$json")
    namespaces+=("${ns:-$(basename "$dir")}")
    registry=$(grep -ho 'oci://[^/"]*' "$dir"/*.yaml | head -n1 | sed 's|oci://||')
    entry=$(jq -c --arg reg "$registry" '
      if .data[".dockerconfigjson"] then .data[".dockerconfigjson"] | @base64d | fromjson | .auths
      elif .stringData[".dockerconfigjson"] then .stringData[".dockerconfigjson"] | fromjson | .auths
      else {($reg): {username: (.stringData.username // (.data.username | @base64d)),
                     password: (.stringData.password // (.data.password | @base64d))}} end' <<<"$json")
    auths=$(jq -c --argjson entry "$entry" '. + $entry' <<<"$auths")
  done < <(find "$overlay/services" -name oci-creds.yaml)
  list=$(printf '%s\n' "${namespaces[@]}" | sort -u | paste -sd, -)
  config=$(jq -c '{auths: .}' <<<"$auths" | base64 -w0)
  source="$overlay/flux-system/oci-creds.yaml"
  cat >"$source" <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: oci-creds
  namespace: flux-system
  annotations:
    $reflector/reflection-allowed: "true"
    $reflector/reflection-allowed-namespaces: "$list"
    $reflector/reflection-auto-enabled: "true"
    $reflector/reflection-auto-namespaces: "$list"
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: $config
YAML
  sops encrypt -i "$source"
  find "$overlay/services" -name oci-creds.yaml -delete
  find "$overlay/services" -name kustomization.yaml -exec sed -i -E \
    -e "/^[[:space:]]*-[[:space:]]*['\"]?(\.\/)?oci-creds\.yaml['\"]?[[:space:]]*\r?$/d" \
    -e "s/,[[:space:]]*oci-creds\.yaml//; s/oci-creds\.yaml,[[:space:]]*//" {} +
  kustomization="$overlay/flux-system/kustomization.yaml"
  grep -q 'oci-creds.yaml' "$kustomization" || printf '  - oci-creds.yaml\n' >>"$kustomization"
done
