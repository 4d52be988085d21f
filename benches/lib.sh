# Sourced by the benchmark scripts, from the repository root.

# die MESSAGE: prints it after the script's name and exits 1.
die() { echo "$(basename "$0" .sh): $*" >&2; exit 1; }

# is_count VALUE: whether VALUE is a positive integer.
is_count() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }

# dataset_sizes DEFAULT_POP [POP [CS]]: sets pop and cs from a script's arguments (CS defaults to 2.5%
# of POP, datagen's share of civil servants), or dies naming the bad one.
dataset_sizes() {
  pop="${2:-$1}"
  is_count "$pop" || die "POP must be a positive integer, got '$pop'"
  cs="${3:-$(( pop / 40 ))}"
  is_count "$cs" || die "CS must be a positive integer, got '$cs'"
}

# needs_time_and_python: dies unless GNU time (for peak memory) and python3 (for summary.json) are here.
needs_time_and_python() {
  [ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed for peak memory: apt-get install time"
  command -v python3 >/dev/null || die "python3 is needed to read the summary"
}

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
