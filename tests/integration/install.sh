#!/usr/bin/env bash
# `make install` and the shared-hosting steps of README.md ("Deploying"), as a user
# would follow them:
#  (a) make install DESTDIR=... PREFIX=/usr/local: the program, the cron programs and
#      the templates, with modes suEXEC accepts; no state tree made, an existing one
#      left alone.
#  (b) make STATIC=1 install for the user's home (the build one uploads to a host
#      that lacks libfcgi, yajl and libuuid): ldd shows none of them.
#  (c) the steps: init a state tree outside the document root, the document root
#      from the templates (htaccess, taskgate-413.json, the wrapper), then Apache with
#      mod_fcgid reading that .htaccess: every kind of route answers, tokens pass.
#  (d) a state tree inside the document root is refused (a 500 that tells the client
#      only "misconfigured, see the error log"; the error log says what to do)
#      until state.htaccess is in place, and then is not downloadable; a group
#      writable tree is refused until chmod go-w.
#  (e) the crontab lines from crontab.in run quietly.
# As root the "user" is www-data (Apache runs its children as www-data); otherwise
# the user running the test.
. "$(dirname "$0")/../lib.sh"

if [ "$(id -u)" = 0 ]; then
	as_user() { setpriv --reuid=www-data --regid=www-data --init-groups env HOME="$HOMEDIR" "$@"; }
	chmod 0755 "$WORK"
else
	as_user() { env HOME="$HOMEDIR" "$@"; }
fi
HOMEDIR=$WORK/home/me
mkdir -p "$HOMEDIR/public_html"
[ "$(id -u)" = 0 ] && chmod 0755 "$WORK/home" && chown -R www-data:www-data "$HOMEDIR"
chmod 0755 "$HOMEDIR"

# ---------------------------------------------------------------- (a) make install
dest=$WORK/dest
make -s -C "$ROOT" install DESTDIR="$dest" PREFIX=/usr/local > "$WORK/install.log" 2>&1
rc=$?
expect_eq "(a) make install DESTDIR PREFIX=/usr/local succeeds" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/# /' "$WORK/install.log" | tail -20
lib=$dest/usr/local/lib/taskgate
share=$dest/usr/local/share/taskgate
for f in "$lib/cgi-bin/taskgate.fcgi" "$lib/cron/taskgate-sweep" "$lib/cron/taskgate-health" \
	"$lib/cron/taskgate-rollup"; do
	expect_eq "(a) ${f#$dest} is installed 0755" "$(stat -c %a "$f" 2> /dev/null)" 755
done
for f in htaccess state.htaccess taskgate-413.json taskgate-vhost.conf.in taskgate-wrapper.sh.in \
	crontab.in lighttpd.conf.in README.md; do
	expect_eq "(a) share/taskgate/$f is installed 0644" "$(stat -c %a "$share/$f" 2> /dev/null)" 644
done
for d in "$lib" "$lib/cgi-bin" "$lib/cron" "$share"; do
	expect_eq "(a) ${d#$dest}/ is 0755" "$(stat -c %a "$d" 2> /dev/null)" 755
done
expect_eq "(a) nothing installed is group or world writable" \
	"$(find "$dest" -perm /022 | head -3)" ""
check "(a) no state tree is made" test ! -e "$dest/usr/local/var"
# An existing state tree (at the built-in default place) survives a reinstall as it was.
tree=$dest/usr/local/var/lib/taskgate
STATE_DIR="$tree" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT "$lib/cgi-bin/taskgate.fcgi" init > /dev/null
echo '{"keep":"me"}' > "$tree/servers/keep.json"
snap() { (cd "$tree" && find . -printf '%p %m %s %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
before=$(snap)
make -s -C "$ROOT" install DESTDIR="$dest" PREFIX=/usr/local > "$WORK/install2.log" 2>&1
expect_eq "(a) a second make install succeeds" "$?" 0
check "(a) ... and leaves an existing state tree exactly as it was" test "$(snap)" = "$before"

# ---------------------------------------------------------------- (b) STATIC=1
prefix=$HOMEDIR/taskgate
upload=$WORK/upload
make -s -C "$ROOT" STATIC=1 install DESTDIR="$upload" PREFIX="$prefix" > "$WORK/install-static.log" 2>&1
rc=$?
expect_eq "(b) make STATIC=1 install succeeds" "$rc" 0
[ "$rc" = 0 ] || sed 's/^/# /' "$WORK/install-static.log" | tail -20
for f in "$upload$prefix/lib/taskgate/cgi-bin/taskgate.fcgi" "$upload$prefix"/lib/taskgate/cron/*; do
	dyn=$(ldd "$f" 2>&1 | grep -oE 'lib(fcgi|yajl|uuid)\.so[^ ]*' | tr '\n' ' ')
	expect_eq "(b) ${f##*/}: libfcgi, yajl and libuuid are not shared libraries" "$dyn" ""
done
# "Upload" to the host: the user's home.
cp -a "$upload$prefix" "$HOMEDIR/"
[ "$(id -u)" = 0 ] && chown -R www-data:www-data "$HOMEDIR"
PROGRAM=$prefix/lib/taskgate/cgi-bin/taskgate.fcgi
check "(b) the uploaded program is there" test -x "$PROGRAM"

# ---------------------------------------------------------------- (c) the shared-hosting steps
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
STATE=$HOMEDIR/taskgate-state
# Step 2: the state tree, outside the document root, made by the user.
as_user env STATE_DIR="$STATE" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="$BASE" \
	"$PROGRAM" init > "$WORK/init.out"
expect_eq "(c) init succeeds" "$?" 0
check "(c) init says where the tree is" grep -q "state tree ready: $STATE" "$WORK/init.out"
expect_eq "(c) the tree is 0750" "$(stat -c %a "$STATE")" 750
# Step 3: the document root, exactly as README.md says.
docroot_setup() { # STATE_DIR for the wrapper
	(
		cd "$HOMEDIR/public_html" || exit 1
		cp "$prefix/share/taskgate/htaccess" .htaccess
		cp "$prefix/share/taskgate/taskgate-413.json" .
		sed -e "s|@STATE_DIR@|$1|" -e "s|@PROGRAM@|$PROGRAM|" \
			"$prefix/share/taskgate/taskgate-wrapper.sh.in" > taskgate.fcgi.new
		chmod 0755 taskgate.fcgi.new
		mv taskgate.fcgi.new taskgate.fcgi
		chmod 0644 .htaccess taskgate-413.json
	)
}
as_user bash -c "$(declare -f docroot_setup); prefix='$prefix' HOMEDIR='$HOMEDIR' PROGRAM='$PROGRAM' docroot_setup '$STATE'"
check "(c) the document root holds .htaccess, taskgate.fcgi and taskgate-413.json" \
	test -f "$HOMEDIR/public_html/.htaccess" -a -x "$HOMEDIR/public_html/taskgate.fcgi" \
	-a -f "$HOMEDIR/public_html/taskgate-413.json"
# The host: Apache with mod_fcgid, .htaccess allowed (AllowOverride All, as most
# hosts have it; tests/lib.sh's apache-cgi front end grants less).
mkdir -p "$WORK/apache"
cat > "$WORK/apache/site.conf" <<EOF
DocumentRoot "$HOMEDIR/public_html"
<Directory "$HOMEDIR/public_html">
	Options SymLinksIfOwnerMatch
	AllowOverride All
	Require all granted
</Directory>
EOF
APACHE_SERVER_EXTRA='LogLevel warn fcgid:info'
apache_start "$WORK/apache" fcgid || { not_ok "(c) Apache + mod_fcgid starts"; finish; exit 1; }
ok "(c) Apache + mod_fcgid starts on 127.0.0.1:$PORT"

anon GET /api/v2/health
expect_eq "(c) health answers 200" "$STATUS" 200
expect_eq "(c) ... from taskgate" "$(jget .status)" ok
admin POST /api/v2/servers '{"id":"gpu-1","protocol":"cog","endpoints":{"predict":"http://127.0.0.1:9/predictions","health":"http://127.0.0.1:9/health-check"}}'
expect_eq "(c) the admin token passes the .htaccess rewrite: register 201" "$STATUS" 201
client POST /api/v2/tasks '{"model":"m","input":{"x":1}}'
expect_eq "(c) the client token creates a task: 202" "$STATUS" 202
id=$(jget .id)
client GET "/api/v2/tasks/$id"
expect_eq "(c) ... which is GETtable" "$(jget .id)" "$id"
client POST /api/v2/servers '{"id":"x"}'
expect_eq "(c) the client token is not admin: 403" "$STATUS" 403
anon GET /api/v2/servers
expect_eq "(c) no token: 401" "$STATUS" 401
client GET /metrics
expect_eq "(c) /metrics answers 200" "$STATUS" 200
check "(c) ... in Prometheus text" grep -q '^# TYPE ' <<< "$BODY"
# get_h TOKEN PATH: GET with the response headers in $WORK/h; sets STATUS and BODY.
get_h() {
	STATUS=$(curl -s -m 30 -o "$WORK/body" -D "$WORK/h" -w '%{http_code}' \
		${1:+-H "Authorization: Bearer $1"} "$BASE$2")
	BODY=$(cat "$WORK/body")
}
get_h "$ADMIN" /status
expect_eq "(c) /status with the admin token answers 200" "$STATUS" 200
check "(c) ... an HTML page" grep -qi '^Content-Type: text/html' "$WORK/h"
curl -s -o /dev/null -w '%{http_code}' -u "anyone:$ADMIN" "$BASE/status" > "$WORK/status.code"
expect_eq "(c) ... and with HTTP Basic (a browser), through the rewrite too" "$(cat "$WORK/status.code")" 200
anon GET /no/such/thing
expect_eq "(c) an unknown path is taskgate's 404" "$STATUS" 404
check "(c) ... as problem+json" jq -e '.status == 404' <<< "$BODY"
{ printf '{"model":"m","input":"'; head -c $((200 * 1024)) /dev/zero | tr '\0' a; printf '"}'; } > "$WORK/big"
client POST /api/v2/tasks "@$WORK/big" -D "$WORK/h"
expect_eq "(c) a 200 KiB body: 413 (the .htaccess limit)" "$STATUS" 413
check "(c) ... as problem+json" grep -qi '^Content-Type: application/problem+json' "$WORK/h"
check "(c) the taskgate processes run as mod_fcgid's" grep -q 'mod_fcgid: server .*taskgate.fcgi' "$WORK/apache/logs/error.log"
curl -s -o /dev/null -w '%{http_code}' "$BASE/.htaccess" > "$WORK/ht.code"
expect_eq "(c) .htaccess is not served" "$(cat "$WORK/ht.code")" 403
admin DELETE "/api/v2/servers/gpu-1?force=1"
expect_eq "(c) unregister the (unreachable) server again" "$STATUS" 204

# ---------------------------------------------------------------- (d) start-up safety
# A tree inside the document root, no deny rule: every request is refused.
INSIDE=$HOMEDIR/public_html/taskgate-state
as_user env STATE_DIR="$INSIDE" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="$BASE" \
	"$PROGRAM" init > /dev/null
as_user bash -c "$(declare -f docroot_setup); prefix='$prefix' HOMEDIR='$HOMEDIR' PROGRAM='$PROGRAM' docroot_setup '$INSIDE'"
get_h "" /api/v2/health
expect_eq "(d) a tree inside the document root without a deny rule: 500" "$STATUS" 500
check "(d) ... problem+json saying what to do" grep -qi '^Content-Type: application/problem+json' "$WORK/h"
check "(d) ... telling the client only to see the error log" \
	jq -e '.detail == "taskgate is misconfigured; see the error log"' <<< "$BODY"
check "(d) ... never the tree's path" bash -c '! grep -qF "$1" <<< "$2"' _ "$INSIDE" "$BODY"
check "(d) ... the error log says what and what to do" \
	grep -q "refusing to serve: the state tree $INSIDE is inside the document root.*Require all denied" "$WORK/apache/logs/error.log"
client GET /api/v2/servers
expect_eq "(d) ... every route is refused" "$STATUS" 500
as_user cp "$prefix/share/taskgate/state.htaccess" "$INSIDE/.htaccess"
anon GET /api/v2/health
expect_eq "(d) with state.htaccess in the tree it serves (no restart needed)" "$STATUS" 200
curl -s -o /dev/null -w '%{http_code}' "$BASE/taskgate-state/config.json" > "$WORK/cfg.code"
expect_eq "(d) ... and config.json cannot be downloaded" "$(cat "$WORK/cfg.code")" 403
# Back to the tree outside; then make it group writable.
as_user bash -c "$(declare -f docroot_setup); prefix='$prefix' HOMEDIR='$HOMEDIR' PROGRAM='$PROGRAM' docroot_setup '$STATE'"
as_user chmod g+w "$STATE/tasks"
anon GET /api/v2/health
expect_eq "(d) a group-writable tree: 500" "$STATUS" 500
check "(d) ... the error log saying chmod -R go-w" grep -q "refusing to serve: .*chmod -R go-w $STATE" "$WORK/apache/logs/error.log"
as_user chmod -R go-w "$STATE"
anon GET /api/v2/health
expect_eq "(d) after the chmod it serves" "$STATUS" 200

# ---------------------------------------------------------------- (e) cron lines
sed -e "s|@STATE_DIR@|$STATE|g" -e "s|@CRONDIR@|$prefix/lib/taskgate/cron|g" \
	"$prefix/share/taskgate/crontab.in" | grep -v '^#' | grep . > "$WORK/crontab"
expect_eq "(e) crontab.in has three active lines" "$(wc -l < "$WORK/crontab")" 3
check "(e) ... with absolute paths and --quiet" \
	bash -c "! grep -v -- '--quiet' '$WORK/crontab' && ! grep -vE ' STATE_DIR=/[^ ]+ /[^ ]+/taskgate-(sweep|health|rollup) ' '$WORK/crontab'"
n=0
while read -r m h dom mon dow cmd; do
	n=$((n + 1))
	# As cron would run it, but looping 2 s instead of 55.
	cmd=${cmd/--for 55/--for 2}
	out=$(as_user env -i PATH=/usr/bin:/bin sh -c "$cmd" 2>&1)
	rc=$?
	expect_eq "(e) cron line $n runs (exit 0)" "$rc" 0
	expect_eq "(e) cron line $n is quiet" "$out" ""
done < "$WORK/crontab"
check "every state file parses" all_state_parses
finish
