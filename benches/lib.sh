# Sourced by the benchmark scripts, from the repository root.

# khop_binary NAME: prints the khop binary to measure: $KHOP when set, else the release build (built now;
# waits if another cargo holds the lock). NAME prefixes the messages.
khop_binary() {
  local bin
  if [ -n "${KHOP:-}" ]; then
    bin="$KHOP"
  else
    echo "$1: building khop (waits if another cargo holds the lock)" >&2
    cargo build --release --locked -p khop >&2 || { echo "$1: cargo build failed" >&2; return 1; }
    bin="${CARGO_TARGET_DIR:-target}/release/khop"
  fi
  [[ "$bin" = /* ]] || bin="$(pwd)/$bin"
  [ -x "$bin" ] || { echo "$1: $bin not found" >&2; return 1; }
  echo "$bin"
}
