// kept_settings.hpp: what a reload says about the settings it could not
// apply. A daemon reads some settings once, at start (its sockets, its
// threads, its user...); a reload that changes one of them installs the
// rest, and that one keeps its running value until a restart. The reload's
// log line names each such setting, so that "configuration reloaded" is
// never said of a change that did not happen. Pure: logs nothing.
#pragma once

#include <string>
#include <vector>

namespace unit::common {

class KeptSettings {
public:
    // Notes `name` when the reloaded value differs from the running one.
    template <class T>
    KeptSettings& compare(const char* name, const T& running, const T& reloaded) {
        if (!(running == reloaded)) names_.emplace_back(name);
        return *this;
    }

    // The settings noted, in the order compared.
    const std::vector<std::string>& names() const noexcept { return names_; }
    bool empty() const noexcept { return names_.empty(); }

    // The reload's message: "reload: configuration reloaded" when none was
    // noted, else "reload: configuration reloaded but for db, threads: they
    // keep their running values until a restart" (a daemon logs it as a
    // warning then).
    std::string message() const;

private:
    std::vector<std::string> names_;
};

}  // namespace unit::common
