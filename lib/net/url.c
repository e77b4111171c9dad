#include "net/url.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *net_url_problem(const char *url)
{
	if (strlen(url) > NET_URL_MAX_LEN)
		return "is longer than 2048 characters";
	/* libcurl's parser repairs "http:/x" and "http:///x" into a URL with another
	 * host; insist on scheme://authority as written. */
	size_t scheme_len = strncasecmp(url, "https://", 8) == 0  ? 8
			    : strncasecmp(url, "http://", 7) == 0 ? 7
								  : 0;
	if (!scheme_len)
		return "must be an absolute http:// or https:// URL";
	const char *auth_end = url + scheme_len + strcspn(url + scheme_len, "/?#");
	if (auth_end == url + scheme_len)
		return "has no host";
	if (memchr(url + scheme_len, '@', (size_t)(auth_end - url - scheme_len)))
		return "must not carry credentials (they would be shown to every client)";
	CURLU *h = curl_url();
	if (!h)
		abort();
	const char *why = NULL;
	char *scheme = NULL, *host = NULL;
	if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
		why = "is not a valid absolute URL";
	else if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		 (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		why = "must use http or https";
	else if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
		why = "has no host";
	else if (strpbrk(url, " \t\r\n"))
		why = "contains white space";
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(h);
	return why;
}
