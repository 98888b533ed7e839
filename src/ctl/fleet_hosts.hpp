// fleet_hosts.hpp: the hosts file of `unitctl fleet`: the metrics URL of each
// daemon of the fleet (unitpolicy or unitmilter), one host a line.
//
// A line is `URL` or `NAME URL`; blank lines and lines starting with '#'
// are ignored, and so is the rest of a line after " #". A URL is
// http://HOST[:PORT][/PATH] (port 80 and path /metrics by default; HOST may
// be a name, an IPv4 address or [IPv6]); https is refused, as is anything
// else. NAME defaults to HOST:PORT. Errors (Errc::Invalid) name the file
// and line ("FILE:LINE: why"): a bad URL, more than two fields, a name used
// twice, no host at all. Reads only the file; logs nothing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "unit/result.hpp"

namespace unit::ctl {

struct FleetHost {
    std::string name;    // as printed
    std::string url;     // as written
    std::string host;    // without brackets
    std::string port;    // "80" by default
    std::string target;  // the request path, "/metrics" by default
};

// The URL `url` as a host named `name` (HOST:PORT when empty); an
// explanation ("bad URL ...") when it is not an http:// URL.
Result<FleetHost> parse_metrics_url(std::string_view url, std::string_view name = {});
// The hosts of a file's text; `file` names it in errors.
Result<std::vector<FleetHost>> parse_fleet_hosts(std::string_view text, std::string_view file);
// The same, read from `path` (Errc::Io when it cannot be read).
Result<std::vector<FleetHost>> read_fleet_hosts(const std::string& path);

}  // namespace unit::ctl
