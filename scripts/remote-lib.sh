# Shared by tpu-vm.sh and gpu-host.sh (sourced, not run): printing and running commands, and
# the commands that set up, build and run prunebench on the remote machine.

# Shell-quotes one word only where it needs it, so printed commands read well and paste.
q() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s' "$1"
  else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}

# Prints a command, then runs it (not when the caller's $dry is 1).
run() {
  local a
  printf '+'
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  printf '\n'
  [ "$dry" = 1 ] || "$@"
}

# Puts a rustup-installed cargo on PATH in a remote shell.
rust_env='. "$HOME/.cargo/env" 2>/dev/null || true'

# Remote command: install Rust if missing, then `bash scripts/setup.sh FLAG` in DIR.
#   remote_setup FLAG DIR
remote_setup() {
  printf '%s' "{ command -v cargo >/dev/null || [ -x \"\$HOME/.cargo/bin/cargo\" ] || curl --proto =https --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal; } && cd $2 && bash scripts/setup.sh $1"
}

# Remote command: the release build in DIR.
#   remote_build DIR
remote_build() { printf '%s' "$rust_env; cd $1 && cargo build --release --locked"; }

# Remote command: run SUITE in DIR, rows to results/OUT.
#   remote_run DIR SUITE OUT
remote_run() { printf '%s' "$rust_env; cd $1 && target/release/prunebench run $(q "$2") --out results/$(q "$3")"; }
