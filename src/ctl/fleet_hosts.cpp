#include "ctl/fleet_hosts.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace unit::ctl {

namespace {

bool valid_port(std::string_view port) {
    if (port.empty() || port.size() > 5) return false;
    if (!std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
        return false;
    const int value = std::stoi(std::string(port));
    return value >= 1 && value <= 65535;
}

bool valid_host(std::string_view host) {
    return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_' || c == ':';
    });
}

std::vector<std::string_view> fields_of(std::string_view line) {
    std::vector<std::string_view> fields;
    while (true) {
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string_view::npos) break;
        line.remove_prefix(start);
        if (line.front() == '#') break;  // a comment to the end of the line
        const auto end = line.find_first_of(" \t");
        fields.push_back(line.substr(0, end));
        if (end == std::string_view::npos) break;
        line.remove_prefix(end);
    }
    return fields;
}

}  // namespace

Result<FleetHost> parse_metrics_url(std::string_view url, std::string_view name) {
    constexpr std::string_view scheme = "http://";
    auto bad = [&](std::string_view why) {
        return make_error(Errc::Invalid, fmt::format("bad URL '{}': {}", url, why));
    };
    if (url.starts_with("https://")) return bad("https is not supported (the daemons serve plain http)");
    if (!url.starts_with(scheme)) return bad("expected http://HOST[:PORT][/PATH]");
    auto rest = url.substr(scheme.size());
    const auto slash = rest.find('/');
    FleetHost host{std::string(name), std::string(url), {}, "80", "/metrics"};
    if (slash != std::string_view::npos) host.target = std::string(rest.substr(slash));
    auto authority = rest.substr(0, slash);
    if (authority.find('@') != std::string_view::npos) return bad("user information is not supported");
    std::string_view port;
    if (authority.starts_with("[")) {  // [IPv6]:port
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return bad("unterminated [");
        host.host = std::string(authority.substr(1, close - 1));
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return bad("expected :PORT after ]");
            port = after.substr(1);
            if (!valid_port(port)) return bad("bad port");
        }
    } else {
        const auto colon = authority.rfind(':');
        host.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (!valid_port(port)) return bad("bad port");
        }
        if (host.host.find(':') != std::string::npos) return bad("an IPv6 address needs brackets");
    }
    if (!valid_host(host.host)) return bad("bad host");
    if (!port.empty()) host.port = std::string(port);
    if (host.name.empty()) host.name = fmt::format("{}:{}", host.host, host.port);
    return host;
}

Result<std::vector<FleetHost>> parse_fleet_hosts(std::string_view text, std::string_view file) {
    std::vector<FleetHost> hosts;
    std::size_t number = 0;
    while (!text.empty()) {
        const auto newline = text.find('\n');
        const auto line = text.substr(0, newline);
        text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
        ++number;
        auto error = [&](std::string_view why) {
            return make_error(Errc::Invalid, fmt::format("{}:{}: {}", file, number, why));
        };
        const auto fields = fields_of(line);
        if (fields.empty()) continue;
        if (fields.size() > 2) return error(fmt::format("expected URL or NAME URL, not {} fields", fields.size()));
        auto host = fields.size() == 1 ? parse_metrics_url(fields[0]) : parse_metrics_url(fields[1], fields[0]);
        if (!host) return error(host.error().message);
        for (const auto& other : hosts)
            if (other.name == host->name) return error(fmt::format("host '{}' named twice", host->name));
        hosts.push_back(std::move(host).value());
    }
    if (hosts.empty()) return make_error(Errc::Invalid, fmt::format("{}: no host", file));
    return hosts;
}

Result<std::vector<FleetHost>> read_fleet_hosts(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(Errc::Io, fmt::format("{}: {}", path, std::strerror(errno)));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return make_error(Errc::Io, fmt::format("{}: read error", path));
    return parse_fleet_hosts(text.str(), path);
}

}  // namespace unit::ctl
