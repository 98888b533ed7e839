#include "unit/lock_wait.hpp"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <thread>

namespace unit::detail {

// The pauses are those of sqlite3_busy_timeout; the first call of a wait
// gives up at once when the last wait ran out less than `timeout` ago.
int wait_for_lock(void* context, int count) noexcept {
    using namespace std::chrono;
    constexpr int pauses_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    auto& wait = *static_cast<BusyWait*>(context);
    auto now = steady_clock::now();
    if (count == 0) {
        if (now - wait.gave_up < wait.timeout) return 0;  // locked a moment ago: do not queue behind it again
        wait.started = now;
    }
    auto left = wait.timeout - duration_cast<milliseconds>(now - wait.started);
    if (left <= milliseconds(0)) {
        wait.gave_up = now;
        return 0;
    }
    auto pause =
        milliseconds(pauses_ms[std::min<std::size_t>(static_cast<std::size_t>(count), std::size(pauses_ms) - 1)]);
    std::this_thread::sleep_for(std::min(pause, left));
    return 1;
}

}  // namespace unit::detail
