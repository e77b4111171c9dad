#!/usr/bin/env bash
# Shared hosting with suEXEC, set up the way a host does it: Apache started as root
# (User www-data), Debian's apache2-suexec-custom with its own document root
# (/etc/apache2/suexec/www-data, /var/www by default), a site user of its own named
# by SuexecUserGroup, the site under that root, owned by the site user, and plain
# CGI (mod_cgi, no mod_fcgid) with apache-conf/htaccess as the site's .htaccess.
# suEXEC runs taskgate as the site user with a cleaned environment: it keeps
# HTTP_* variables and drops REDIRECT_HTTP_AUTHORIZATION.
#   (a) the .htaccess of the previous release (no second rule): the token never
#       arrives; taskgate says so in the 401 and in /api/v2/health;
#   (b) the shipped .htaccess: authenticated routes work, as the site user;
#   (c) the previous .htaccess plus "CGIPassAuth On", where the host allows
#       AuthConfig: works too;
#   and with the shipped .htaccess the detection stays quiet where the header is
#   simply not sent.
# Needs root (a host's set-up: a user, a folder under the suEXEC root).
. "$(dirname "$0")/../lib.sh"

SITE_USER=tgsite
SUEXEC=/usr/lib/apache2/suexec
SUEXEC_CONF=/etc/apache2/suexec/www-data

if [ "$(id -u)" != 0 ]; then
	echo "# SKIP: suEXEC's set-up (a site user, a folder under the suEXEC root) needs root"
	ok "# SKIP apache_suexec needs root"
	finish
	exit 0
fi
if ! [ -u "$(readlink -f "$SUEXEC")" ] || ! [ -r "$SUEXEC_CONF" ]; then
	not_ok "suEXEC is installed (apache2-suexec-custom; make test-deps installs it)"
	finish
	exit 1
fi
suexec_root=$(head -n 1 "$SUEXEC_CONF")
case $suexec_root in
/?*) ;;
*)
	not_ok "$SUEXEC_CONF names a document root (first line: '$suexec_root')"
	finish
	exit 1
	;;
esac

created_user=0
if ! id "$SITE_USER" > /dev/null 2>&1; then
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$SITE_USER" || { not_ok "create the site user"; finish; exit 1; }
	created_user=1
fi
mkdir -p "$suexec_root"
SITE=$(mktemp -d "$suexec_root/taskgate-suexec.XXXXXX")
suexec_cleanup() {
	_apache_stop
	rm -rf "$SITE"
	[ "$created_user" = 1 ] && userdel "$SITE_USER" 2> /dev/null
	cleanup
}

# The site: what a customer uploads, owned by the customer's user; suEXEC refuses a
# program or folder that anyone else may write.
mkdir -p "$WORK/apache/logs" "$WORK/bin"
cp "$BUILD/taskgate.fcgi" "$WORK/bin/taskgate.fcgi"
chmod 0755 "$WORK" "$WORK/bin" "$WORK/bin/taskgate.fcgi"
cp "$ROOT/apache-conf/taskgate-413.json" "$SITE/"
apache_fill "$ROOT/apache-conf/taskgate-wrapper.sh.in" "$SITE/taskgate.fcgi" \
	STATE_DIR="$STATE" PROGRAM="$WORK/bin/taskgate.fcgi"
cp "$ROOT/apache-conf/htaccess" "$SITE/.htaccess"
chmod 0755 "$SITE" "$SITE/taskgate.fcgi"
chmod 0644 "$SITE/.htaccess" "$SITE/taskgate-413.json"
chown -R "$SITE_USER:$SITE_USER" "$SITE"

suexec_log_lines=$(wc -l < /var/log/apache2/suexec.log 2> /dev/null || echo 0)
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
STATE_DIR="$STATE" ADMIN_TOKEN=$ADMIN CLIENT_TOKEN=$CLIENT PUBLIC_URL="$BASE" \
	"$BUILD/taskgate.fcgi" init > /dev/null || { not_ok "init the state tree"; finish; exit 1; }

# The host's side: the site's virtual host names its user for suEXEC.
cat > "$WORK/apache/site.conf" <<EOF
DocumentRoot "$SITE"
SuexecUserGroup $SITE_USER $SITE_USER
<Directory "$SITE">
	Options SymLinksIfOwnerMatch
	AllowOverride FileInfo Options Limit AuthConfig
	Require all granted
</Directory>
EOF
APACHE_SUEXEC=1 APACHE_STATE_OWNER=$SITE_USER apache_start "$WORK/apache" cgi ||
	{ not_ok "Apache with suEXEC starts"; suexec_cleanup; trap - EXIT; finish; exit 1; }
trap 'suexec_cleanup' EXIT
ok "Apache (prefork, mod_cgi, suEXEC for $SITE_USER under $suexec_root) starts"

# Each variant is a new .htaccess; Apache reads it on every request.
htaccess() { cp "$1" "$SITE/.htaccess" && chown "$SITE_USER:$SITE_USER" "$SITE/.htaccess"; }

# (a) the previous release's .htaccess: only the rule that redirects, E= included.
grep -v '^RewriteRule \^taskgate' "$ROOT/apache-conf/htaccess" > "$WORK/htaccess-previous"
htaccess "$WORK/htaccess-previous"
anon GET /api/v2/health
expect_eq "(a) health answers" "$STATUS" 200
expect_eq "(a) health: the Authorization header was stripped" "$(jget .authorization)" stripped
check "(a) health's warning names suEXEC and the fix" \
	bash -c 'printf "%s" "$1" | jq -e ".warnings[0] | test(\"suEXEC\") and test(\"HTTP_AUTHORIZATION\") and test(\"CGIPassAuth\")" > /dev/null' _ "$BODY"
admin GET /api/v2/health
expect_eq "(a) health with a token: still stripped" "$(jget .authorization)" stripped
admin GET /api/v2/servers
expect_eq "(a) the admin token gets 401" "$STATUS" 401
check "(a) the 401 says the web server removed the header" \
	bash -c 'printf "%s" "$1" | jq -e "(.detail | test(\"removed the Authorization header\")) and .field == \"Authorization\"" > /dev/null' _ "$BODY"
client POST /api/v2/tasks '{"model":"m","input":{}}'
expect_eq "(a) creating a task: 401 too" "$STATUS" 401
check "(a) ... with the same explanation" \
	bash -c 'printf "%s" "$1" | jq -e ".detail | test(\"suEXEC\")" > /dev/null' _ "$BODY"
curl -s -o "$WORK/body" -u "admin:$ADMIN" "$BASE/status"
check "(a) the status page's 401 says so too" grep -q "suEXEC" "$WORK/body"
check "(a) suEXEC ran taskgate as $SITE_USER (its log since this test began)" \
	bash -c 'tail -n +"$1" /var/log/apache2/suexec.log | grep -qF "/$2) cmd: taskgate.fcgi"' \
	_ "$((suexec_log_lines + 1))" "$SITE_USER"

# (b) the shipped .htaccess
htaccess "$ROOT/apache-conf/htaccess"
anon GET /api/v2/health
expect_eq "(b) health without a token: none, not stripped" "$(jget .authorization)" none
expect_eq "(b) ... and no warning" "$(jget '.warnings | length')" 0
admin GET /api/v2/health
expect_eq "(b) health with a token: received" "$(jget .authorization)" received
admin GET /api/v2/servers
expect_eq "(b) the admin token lists servers" "$STATUS" 200
client GET /api/v2/servers/nope
expect_eq "(b) the client token reaches taskgate (404, not 401)" "$STATUS" 404
client DELETE /api/v2/servers/nope
expect_eq "(b) the client token is a client's (403 on an admin route)" "$STATUS" 403
anon GET /api/v2/servers
expect_eq "(b) no token: 401" "$STATUS" 401
check "(b) ... without the suEXEC explanation" \
	bash -c 'printf "%s" "$1" | jq -e "(.detail | test(\"suEXEC\") | not)" > /dev/null' _ "$BODY"
client POST /api/v2/tasks '{"model":"m","input":{}}'
expect_eq "(b) a client creates a task" "$STATUS" 202
id=$(jget .id)
task_file=$(find "$STATE" -name "$id.json" -path '*tasks*' -print -quit)
expect_eq "(b) the task file belongs to the site user (suEXEC ran taskgate)" \
	"$(stat -c %U "$task_file" 2> /dev/null)" "$SITE_USER"
client GET "/api/v2/tasks/$id"
expect_eq "(b) and reads it back" "$(jget .status)" QUEUED
curl -s -o "$WORK/body" -w '%{http_code}' -u "admin:$ADMIN" "$BASE/status" > "$WORK/code"
expect_eq "(b) the status page with HTTP Basic" "$(cat "$WORK/code")" 200

# (c) the previous release's .htaccess plus "CGIPassAuth On" (where the host grants
# AuthConfig): Apache itself passes the header as HTTP_AUTHORIZATION.
{ cat "$WORK/htaccess-previous"; echo "CGIPassAuth On"; } > "$WORK/htaccess-passauth"
htaccess "$WORK/htaccess-passauth"
admin GET /api/v2/servers
expect_eq "(c) CGIPassAuth On: the admin token lists servers" "$STATUS" 200
admin GET /api/v2/health
expect_eq "(c) health: received" "$(jget .authorization)" received
client DELETE /api/v2/servers/nope
expect_eq "(c) the client token is a client's (403)" "$STATUS" 403

check "every file of the state tree parses" all_state_parses
finish
