# Sourced first by scripts that need root (network namespaces, nftables): as root they just go on;
# as another user they run again through sudo (which must then be installed), with the same arguments.
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "$(basename "$0") needs root (network namespaces, nftables): run it as root; sudo is not installed" >&2
    exit 1
  fi
  echo ">> $(basename "$0") needs root: running it again through sudo" >&2
  exec sudo -- "$0" "$@"
fi
