/* url: checks of the URLs we will later send requests to (server endpoints, alert
 * webhooks), with libcurl's own parser, so what passes here is what
 * net/http_client will accept and send to the same host. */
#ifndef TASKGATE_URL_H
#define TASKGATE_URL_H

#define NET_URL_MAX_LEN 2048

/* NULL if url is an absolute http:// or https:// URL with a host, no credentials,
 * no white space and at most NET_URL_MAX_LEN characters; else why not, as a phrase
 * that follows the field's name ("is longer than 2048 characters"). */
const char *net_url_problem(const char *url);

#endif
