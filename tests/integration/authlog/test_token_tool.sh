#!/usr/bin/env bash
# scripts/rpchost-token and scripts/dev-token as a user runs them: what they
# print, what they write, and their refusals (exit 2, one line).
set -uo pipefail
scripts=$1
tool=$scripts/rpchost-token
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 pass=0
check() { # name command...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); echo "ok   $name"; else fail=$((fail + 1)); echo "FAIL $name"; fi
}
f=$tmp/tokens

tok=$("$tool" add alice '/Rides/*' '*' admin --file "$f" 2>"$tmp/err")
check "add prints a 43-character base64url token" bash -c '[[ $1 =~ ^[A-Za-z0-9_-]{43}$ ]]' _ "$tok"
hash=$(printf '%s' "$tok" | sha256sum | cut -d' ' -f1)
check "the file holds the hash line" grep -qx "$hash alice /Rides/\* \* admin" "$f"
check "the file never holds the token" bash -c "! grep -q -- '$tok' '$f'"
check "the file is private (0600)" [ "$(stat -c %a "$f")" = 600 ]
check "stderr says it is shown once" grep -q "shown only this once" "$tmp/err"
tok2=$(RPCHOST_TOKENS_FILE=$f "$tool" add bob 2>/dev/null)
check "two tokens differ" [ "$tok" != "$tok2" ]
check "RPCHOST_TOKENS_FILE is used" grep -q " bob$" "$f"
check "hash reads a token on stdin" [ "$(printf '%s\n' "$tok" | "$tool" hash)" = "$hash" ]
check "list shows principals, not hashes" bash -c "'$tool' list --file '$f' | grep -q '^alice .*token ${hash:0:12}\.\.\. */Rides/\* \* admin' && ! '$tool' list --file '$f' | grep -q '$hash'"
printf 'x' >> "$f" # an unterminated last line is not glued to
"$tool" add carol /A/b --file "$f" >/dev/null 2>&1
check "an unterminated last line is kept apart" grep -q ' carol /A/b$' "$f"
check "remove drops the principal" bash -c "'$tool' remove bob --file '$f' 2>/dev/null && ! grep -q ' bob$' '$f' && grep -q ' alice ' '$f'"
check "remove keeps the mode" [ "$(stat -c %a "$f")" = 600 ]

refuse() { # name expected-words args...
  local name=$1 words=$2; shift 2
  local out rc
  out=$("$tool" "$@" 2>&1 >/dev/null); rc=$?
  check "$name" bash -c "[ $rc = 2 ] && [ \$(printf '%s\n' \"\$1\" | wc -l) = 1 ] && printf '%s' \"\$1\" | grep -q -- \"\$2\"" _ "$out" "$words"
}
refuse "refuses a principal with a blank" "bad principal" add 'a b' --file "$f"
refuse "refuses a bad method pattern" "bad method pattern '/Rides'" add x /Rides --file "$f"
refuse "refuses a partial wildcard" "bad method pattern" add x '/Rides/St*' --file "$f"
refuse "needs a file" "no tokens file" add x
refuse "remove of an unknown principal" "no token of nobody" remove nobody --file "$f"
refuse "a missing directory" "does not exist" add x --file "$tmp/none/tokens"

d=$tmp/dev-tokens
"$scripts/dev-token" "$d" 2>"$tmp/dev-err"
check "dev-token writes the dev token's hash" grep -q "^$(printf rpchost-dev-token | sha256sum | cut -d' ' -f1) dev \* admin$" "$d"
check "dev-token says how to use it" grep -q "authorization: Bearer rpchost-dev-token" "$tmp/dev-err"
echo "# keep" >> "$d"
"$scripts/dev-token" "$d" 2>/dev/null
check "dev-token keeps an existing file" grep -q "^# keep$" "$d"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
