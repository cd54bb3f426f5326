#!/bin/sh
# echo.sh: answers with the CGI environment it was given and the request
# body it read on standard input: what a server hands a program, made
# visible. The body length is known here, so this one sends Content-Length.
if [ "$1" = --help ]; then
	echo "echo.sh: a CGI program; http_server.lua --cgi-bin DIR runs it for /cgi-bin/echo.sh and it answers with its environment and the body"
	exit 0
fi
body=$(mktemp)
trap 'rm -f "$body" "$body.out"' EXIT
cat > "$body"
{
  echo "CGI meta-variables:"
  env | grep -E '^(GATEWAY_INTERFACE|SERVER_[A-Z_]+|REQUEST_[A-Z_]+|QUERY_STRING|CONTENT_[A-Z_]+|PATH_INFO|PATH_TRANSLATED|SCRIPT_NAME|REMOTE_[A-Z_]+|HTTP_[A-Z_]+)=' | sort
  echo "body ($(wc -c < "$body" | tr -d ' ') bytes):"
  cat "$body"
} > "$body.out"
printf 'Content-Type: text/plain; charset=utf-8\r\n'
printf 'Content-Length: %s\r\n' "$(wc -c < "$body.out" | tr -d ' ')"
printf '\r\n'
cat "$body.out"
