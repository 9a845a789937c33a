#!/usr/bin/env bash
# Sets up what the end-to-end tests (test/e2e) need: a real VS Code (code-server 4.100.3, the newest
# release that runs on Node 20: the web workbench with a real extension host) and Debian's Chromium,
# which playwright-core drives (nothing downloads browsers).
#
#   bash scripts/setup-e2e.sh
#
# Idempotent and non-interactive (CI=true, root, no stdin, no TTY). It installs
#   - Debian packages chromium, libkrb5-dev, ripgrep (and python3, make, g++ for the native rebuilds)
#     with apt-get when root; `apt-get update` runs only when something is missing;
#   - code-server@4.100.3 into ${FAIRPRUNE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fair-prune-e2e}/
#     code-server-4.100.3, outside the repository. Its own postinstall downloads ripgrep from GitHub and
#     needs a terminal, so it is installed with --ignore-scripts and the postinstall's steps are done
#     here (recipe: ../shared/notes/environment.md, "A real VS Code for integration tests"). A marker
#     file is written last: a second run takes seconds, an interrupted install is removed and redone.
# Prints the code-server folder on its last line (test/e2e/harness.ts finds it the same way).
# Fails with a message naming the step on any error.
set -euo pipefail

VERSION=4.100.3
CACHE="${FAIRPRUNE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fair-prune-e2e}"
DIR="$CACHE/code-server-$VERSION"
MARKER="$DIR/.fairprune-install-complete"
ENTRY="$DIR/node_modules/code-server/out/node/entry.js"
CHROMIUM="${FAIRPRUNE_CHROMIUM:-/usr/bin/chromium}"

say() { printf '[setup-e2e] %s\n' "$*" >&2; }
die() { printf '[setup-e2e] ERROR: %s\n' "$*" >&2; exit 1; }

# As root npm would refuse code-server's scripts without unsafe-perm, and node-gyp (run through npx by
# node-pty's rebuild) asks "Ok to proceed?" and gives up without a terminal unless npm_config_yes.
export npm_config_unsafe_perm=true npm_config_yes=true npm_config_fund=false npm_config_audit=false
export npm_config_update_notifier=false npm_config_loglevel=error
# npm's cache goes beside the install, not into the home folder.
export npm_config_cache="$CACHE/npm-cache"

command -v node >/dev/null || die "node is not on PATH"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" = 20 ] || die "code-server $VERSION needs Node 20 (this is $(node -v)); the e2e tests cannot run on this Node"

# --- Debian packages -------------------------------------------------------------------------------
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
command -v rg >/dev/null || missing+=(ripgrep)
command -v python3 >/dev/null || missing+=(python3)
command -v make >/dev/null || missing+=(make)
command -v g++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt/dpkg (a parallel job, unattended-upgrades) may hold the lock: wait for it, bounded.
    apt=(apt-get -o DPkg::Lock::Timeout=600)
    "${apt[@]}" update -qq </dev/null >&2 || die "apt-get update failed"
    "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2 \
      || die "apt-get install ${missing[*]} failed"
  else
    die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  fi
else
  say "Debian packages present: chromium, libkrb5-dev, ripgrep, python3, make, g++"
fi
[ -x "$CHROMIUM" ] || die "no Chromium at $CHROMIUM (set FAIRPRUNE_CHROMIUM to a Chromium binary)"
RG=$(command -v rg) || die "ripgrep (rg) is missing"

# --- code-server -----------------------------------------------------------------------------------
mkdir -p "$CACHE"
# Two setups at once (parallel jobs) would build into the same folder: take turns.
exec 9>"$CACHE/.setup.lock"
flock -w 900 9 || die "another setup-e2e.sh has held $CACHE/.setup.lock for 15 minutes"

if [ -f "$MARKER" ] && [ -f "$ENTRY" ]; then
  say "code-server $VERSION already installed in $DIR"
  echo "$DIR"
  exit 0
fi

if [ -e "$DIR" ]; then
  say "removing an unfinished install in $DIR"
  rm -rf "$DIR"
fi
start=$(date +%s)
say "installing code-server $VERSION into $DIR (about a minute and a half)"
mkdir -p "$DIR"
cd "$DIR"
printf '{ "name": "fairprune-code-server", "private": true }\n' > package.json

step() { say "$1"; shift; "$@" </dev/null >&2 || die "failed: $* (in $(pwd))"; }
step "npm install code-server@$VERSION --ignore-scripts (its postinstall would fetch ripgrep from GitHub)" \
  npm install --ignore-scripts "code-server@$VERSION"
step "npm rebuild argon2" npm rebuild argon2

VS="$DIR/node_modules/code-server/lib/vscode"
[ -d "$VS/bin/remote-cli" ] || die "$VS/bin/remote-cli is missing: code-server's package layout changed"
cd "$VS"
step "VS Code's dependencies (lib/vscode: npm install --omit=dev --ignore-scripts)" \
  npm install --omit=dev --ignore-scripts
say "linking Debian's ripgrep ($RG) as @vscode/ripgrep's binary"
mkdir -p node_modules/@vscode/ripgrep/bin
ln -sfn "$RG" node_modules/@vscode/ripgrep/bin/rg
step "rebuilding native modules: kerberos @parcel/watcher @vscode/spdlog native-watchdog node-pty @vscode/deviceid" \
  npm rebuild kerberos @parcel/watcher @vscode/spdlog native-watchdog node-pty @vscode/deviceid
ln -sfn node_modules node_modules.asar
( cd bin/remote-cli && ln -sfn code-linux.sh code-server )
( cd bin/helpers && ln -sfn browser-linux.sh browser.sh )
cd "$VS/extensions"
step "built-in extensions' dependencies (lib/vscode/extensions: npm install --omit=dev)" npm install --omit=dev

# Smoke check with its own config and XDG folders (even --version writes a config and logs otherwise).
tmp=$(mktemp -d)
if ! out=$(XDG_CONFIG_HOME="$tmp/config" XDG_DATA_HOME="$tmp/data" XDG_CACHE_HOME="$tmp/cache" \
  node "$ENTRY" --config "$tmp/config.yaml" --version </dev/null 2>&1); then
  rm -rf "$tmp"
  die "code-server --version failed: $out"
fi
rm -rf "$tmp"
say "code-server --version: $(printf '%s\n' "$out" | grep -E '^[0-9]+\.' | head -1)"

printf 'code-server %s, installed %s in %s s\n' "$VERSION" "$(date -u +%FT%TZ)" "$(( $(date +%s) - start ))" > "$MARKER"
say "code-server $VERSION installed in $(( $(date +%s) - start )) s"
echo "$DIR"
