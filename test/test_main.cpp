// test/test_main.cpp — the main() of every test binary.
//
// Each test file is its own binary linked with this main, so that:
//  - the selector backend is chosen per run (EVLOOP_TEST_BACKEND=epoll|poll),
//    and tools/check runs every binary once per backend;
//  - open fds are counted before and after the whole file, and a leak fails it;
//  - the run ends with one machine-readable line that tools/check sums:
//      evloop-test-result: passed=N failed=M skipped=K
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "platform/selector.hpp"

namespace {

int count_open_fds() {
    int count = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return -1;
    while (dirent* entry = ::readdir(dir))
        if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
    return count - 1;  // the DIR's own fd
}

struct Totals : doctest::IReporter {
    explicit Totals(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats& stats) override {
        passed = static_cast<int>(stats.numTestCasesPassingFilters - stats.numTestCasesFailed);
        failed = static_cast<int>(stats.numTestCasesFailed);
        skipped_total = static_cast<int>(stats.numTestCases - stats.numTestCasesPassingFilters);
    }
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override { ++skipped; }

    static inline int passed = 0, failed = 0, skipped = 0, skipped_total = 0;
};

REGISTER_LISTENER("evloop-totals", 1, Totals);

}  // namespace

int main(int argc, char** argv) {
    if (const char* name = std::getenv("EVLOOP_TEST_BACKEND")) {
        if (std::strcmp(name, "epoll") == 0)
            evloop::set_default_backend(evloop::Backend::epoll);
        else if (std::strcmp(name, "poll") == 0)
            evloop::set_default_backend(evloop::Backend::poll);
        else {
            std::fprintf(stderr, "EVLOOP_TEST_BACKEND must be epoll or poll, not %s\n", name);
            return 2;
        }
    }
    int fds_before = count_open_fds();

    doctest::Context context(argc, argv);
    int rc = context.run();
    if (context.shouldExit()) return rc;

    int fds_after = count_open_fds();
    int failed = Totals::failed;
    int passed = Totals::passed;
    if (fds_after != fds_before) {
        std::fprintf(stderr, "FD LEAK: %d open fds before the tests, %d after\n", fds_before, fds_after);
        ++failed;  // the leak counts as one failed case of this file
        if (rc == 0) rc = 1;
    }
    std::printf("evloop-test-result: passed=%d failed=%d skipped=%d backend=%s\n", passed, failed,
                Totals::skipped, std::string(evloop::backend_name(evloop::default_backend())).c_str());
    return rc;
}
