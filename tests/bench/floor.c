/* floor.fcgi: a FastCGI responder that does nothing but answer, the baseline the
 * benchmark divides by: whatever lighttpd, FastCGI and wrk cost on this machine,
 * without any of taskgate's work. */
#include <fcgiapp.h>

int main(void)
{
	FCGX_Request req;
	static const char answer[] = "Status: 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: 12\r\n\r\n{\"ok\":true}\n";
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(answer, (int)sizeof answer - 1, req.out);
		FCGX_Finish_r(&req);
	}
	return 0;
}
