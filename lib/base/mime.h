/* mime: the media types of the files taskgate serves and decodes, by name. One
 * table both ways, so a decoded data URI gets the extension that serves it back
 * with its type. */
#ifndef TASKGATE_MIME_H
#define TASKGATE_MIME_H

/* The type to serve a file name with (by its extension, ignoring case);
 * "application/octet-stream" when unknown. */
const char *mime_of_name(const char *name);
/* The extension (without '.') for a media type such as "image/png" (parameters
 * after ';' ignored, case ignored); "bin" when unknown. */
const char *mime_extension(const char *type, unsigned long len);

#endif
