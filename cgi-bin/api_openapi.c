/* GET /api/v2/openapi.json: the API description kept in cgi-bin/openapi.json,
 * compiled into the program so a deployment cannot serve a stale copy. */
#include <string.h>

#include "app.h"

extern const char openapi_json[];
extern const unsigned long openapi_json_len;

int api_openapi(struct http_req *rq, struct http_resp *rs)
{
	(void)rq;
	buf_add(&rs->body, openapi_json, openapi_json_len);
	rs->content_type = "application/json";
	return 200;
}
