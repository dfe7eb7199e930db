# Helpers that the one-call GPU scripts source (gpu_session.sh, gpu_mmkg.sh).
#   PY: the python that holds PyTorch there (python3); INSTALL=0 skips the
#   install (a local dry run); LOGS: where logs go.

# install_library: the library from this checkout, without dependencies (the
# machine has torch, torch-geometric, typer and tqdm and no registry); where
# pip cannot build it, the sources laid out as the installed package.
install_library() {
  [ "${INSTALL:-1}" = 1 ] || return 0
  if ! $PY -m pip install -q --no-deps --no-build-isolation . > "$LOGS/pip.log" 2>&1; then
    tail -5 "$LOGS/pip.log"; echo "pip failed: using the sources through PYTHONPATH"
    mkdir -p /tmp/pkg && cp -r dhns_geo /tmp/pkg/ && cp -r cli /tmp/pkg/dhns_geo/cli &&
      cp -r datasets /tmp/pkg/dhns_geo/datasets
    export PYTHONPATH=/tmp/pkg
  fi
  $PY -c "import dhns_geo.cli, dhns_geo.datasets" || { echo "the library does not import"; exit 1; }
}

# pack NAME DIR...: DIRs (under /tmp) into $OUT/NAME.tar.gz, without weights
# (*.pt but ranks.pt, which the paired bootstrap reads).
pack() {
  local name=$1; shift
  (cd /tmp && find "$@" \( -name '*.pt' ! -name ranks.pt \) -prune -o -type f -print |
     tar -czf "$OUT/$name.tar.gz" -T -)
}
