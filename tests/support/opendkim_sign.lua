-- Drives OpenDKIM as an MTA would (miltertest, from OpenDKIM's tools): one
-- message from 127.0.0.1 (an internal host, so OpenDKIM signs it), read from
-- the file `message` (headers one per line, no folding; CRLF line ends).
-- Prints the message with the DKIM-Signature OpenDKIM added in front, CRLF
-- line ends as on the wire, or fails when OpenDKIM added none.
--
-- miltertest -D socket=inet:PORT@127.0.0.1 -D message=FILE -D sender=ADDR -s opendkim_sign.lua

local file = assert(io.open(message, "rb"))
local text = file:read("*a")
file:close()
local head, body = text:match("^(.-)\r\n\r\n(.*)$")
assert(head, "no empty line after the header in " .. message)

local conn = mt.connect(socket, 50, 0.1)
if conn == nil then
  error("cannot connect to " .. socket)
end
assert(mt.conninfo(conn, "localhost", "127.0.0.1") == nil, "conninfo")
assert(mt.macro(conn, SMFIC_MAIL, "i", "TESTQUEUEID") == nil, "macro")
assert(mt.mailfrom(conn, sender) == nil, "mailfrom")
assert(mt.rcptto(conn, "someone@example.org") == nil, "rcptto")
for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  assert(mt.header(conn, name, value) == nil, "header " .. name)
end
assert(mt.eoh(conn) == nil, "eoh")
assert(mt.bodystring(conn, body) == nil, "body")
assert(mt.eom(conn) == nil, "eom")
local signature = mt.getheader(conn, "DKIM-Signature", 0)
if signature == nil then
  error("OpenDKIM added no DKIM-Signature (reply " .. tostring(mt.getreply(conn)) .. ")")
end
mt.disconnect(conn)
signature = signature:gsub("\r?\n", "\r\n")
io.write("DKIM-Signature:" .. signature .. "\r\n" .. text)
