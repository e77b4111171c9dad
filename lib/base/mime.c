#include "base/mime.h"

#include <string.h>
#include <strings.h>

/* What ML models return: images, audio, video, text and data. The first extension
 * listed for a type is the one a decoded file gets. */
static const struct {
	const char *ext;
	const char *type;
} types[] = {
    {"png", "image/png"},	  {"jpg", "image/jpeg"},	{"jpeg", "image/jpeg"},
    {"gif", "image/gif"},	  {"webp", "image/webp"},	{"svg", "image/svg+xml"},
    {"bmp", "image/bmp"},	  {"tif", "image/tiff"},	{"tiff", "image/tiff"},
    {"avif", "image/avif"},	  {"ico", "image/x-icon"},	{"mp3", "audio/mpeg"},
    {"wav", "audio/wav"},	  {"ogg", "audio/ogg"},		{"flac", "audio/flac"},
    {"m4a", "audio/mp4"},	  {"mp4", "video/mp4"},		{"webm", "video/webm"},
    {"mov", "video/quicktime"},	  {"mkv", "video/x-matroska"},	{"gltf", "model/gltf+json"},
    {"glb", "model/gltf-binary"}, {"obj", "model/obj"},		{"txt", "text/plain"},
    {"csv", "text/csv"},	  {"html", "text/html"},	{"md", "text/markdown"},
    {"json", "application/json"}, {"pdf", "application/pdf"}, {"zip", "application/zip"},
    {"npy", "application/octet-stream"}, {"bin", "application/octet-stream"},
};

const char *mime_of_name(const char *name)
{
	const char *dot = name ? strrchr(name, '.') : NULL;
	for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
		if (strcasecmp(dot + 1, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

const char *mime_extension(const char *type, unsigned long len)
{
	const char *semi = memchr(type, ';', len);
	size_t n = semi ? (size_t)(semi - type) : len;
	while (n && type[n - 1] == ' ')
		n--;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strlen(types[i].type) == n && strncasecmp(type, types[i].type, n) == 0)
			return types[i].ext;
	return "bin";
}
