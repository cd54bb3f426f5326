#!/bin/sh
# hello.sh: the smallest CGI program. The server runs it once per request
# (GET /cgi-bin/hello.sh?name=you) with the request in environment
# variables; what it prints is the response: header lines, an empty line,
# the body. No Content-Length: the server frames the body itself.
if [ "$1" = --help ]; then
	echo "hello.sh: a CGI program; http_server.lua --cgi-bin DIR runs it for GET /cgi-bin/hello.sh?name=you"
	exit 0
fi
name=${QUERY_STRING#*name=}  # the value of name= in the query, if any
name=${name%%&*}
[ "$name" = "$QUERY_STRING" ] && name=
printf 'Content-Type: text/plain; charset=utf-8\r\n'
printf '\r\n'
printf 'Hello, %s, from a shell script (pid %s)\n' "${name:-world}" "$$"
printf 'You asked %s %s%s with %s.\n' "$REQUEST_METHOD" "$SCRIPT_NAME" "$PATH_INFO" "$SERVER_PROTOCOL"
