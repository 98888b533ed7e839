// resolve.cpp: a provider's program built against the installed libunit
// (headers and library found through unitpolicy.pc), as tests/install/run.sh
// compiles it. It opens a replica read-only and prints one line per address:
//   ADDRESS OUTCOME UNIT ROUTE STATE GENERATION
// (UNIT, ROUTE and STATE are "-" when the outcome has no mailbox; an alias
// prints its targets' addresses instead, separated by commas).
// Usage: resolve REPLICA DELIMITER ADDRESS...  Exit: 0, or 2 on bad usage.
#include <unit/resolver.hpp>

#include <iostream>
#include <string>
#include <utility>

namespace {

std::string describe(const unit::Resolution& r) {
    std::string text = std::string(unit::to_string(r.outcome)) + ' ';
    if (r.destination) {
        const unit::Destination& d = *r.destination;
        text += d.unit.name + ' ' + d.unit.route() + ' ' + std::string(unit::to_string(d.mailbox.state));
    } else if (r.outcome == unit::Outcome::Alias) {
        std::string targets;
        for (const auto& t : r.targets) targets += (targets.empty() ? "" : ",") + t.address;
        text += targets + " - -";
    } else {
        text += "- - -";
    }
    return text + ' ' + std::to_string(r.generation);
}

}  // namespace

int main(int argc, char* argv[]) {
    if (argc < 4) {
        std::cerr << "usage: resolve REPLICA DELIMITER ADDRESS...\n";
        return 2;
    }
    unit::DirectoryOptions directory_options;
    directory_options.path = argv[1];
    unit::Directory directory(std::move(directory_options));
    unit::ResolverOptions options;
    options.address.recipient_delimiter = argv[2];
    for (int i = 3; i < argc; ++i)
        std::cout << argv[i] << ' ' << describe(unit::resolve(directory, options, argv[i])) << '\n';
    return 0;
}
