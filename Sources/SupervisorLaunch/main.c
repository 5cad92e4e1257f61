// supervisor-launch: the exec launcher every job attempt starts through (SPEC section 7).
//
//   supervisor-launch [--cwd DIR] [--report-fd N] [--nofile N] [--cgroup DIR] [--join DIR]...
//                     [--rlimit-as BYTES] [--nproc N] [--uid N --gid N [--groups N,N...]]
//                     [--landlock ABI [--read PATH]... [--write PATH]... [--write-files PATH]...]
//                     [--seccomp-fd N] -- PROGRAM [ARG...]
//
// The supervisor is a threaded Swift process and must not run code between fork and
// exec, so this small single-threaded program does the setup instead: it parses its
// options into a plan, then carries the plan out step by step and execs the job. The
// job's environment is this process's environment, exactly; nothing is added.
//
// --join names a cgroup v1 directory (memory, pids on hybrid hosts) the job moves into
// before it runs anything; --rlimit-as and --nproc are the fallbacks where no cgroup
// can hold `memory_max` or `pids_max`.
//
// With --cgroup the job is created inside the attempt's cgroup as a child of the
// launcher (clone3 with CLONE_INTO_CGROUP), and the launcher stays as its parent only to
// pass its exit status on. Moving a running process into a cgroup instead (writing
// cgroup.procs) waits for an RCU grace period in the kernel: ~13 ms here whenever
// migrations are not back to back. Kernels without CLONE_INTO_CGROUP get the move.
//
// --landlock confines the job's file system access (Landlock, at the kernel's ABI the
// supervisor found): it may read below each --read path, read and write below each
// --write path, and read and write the files that exist below each --write-files path
// (no making, removing, renaming or truncating), and nothing else; from ABI 6 it cannot
// signal processes outside its own domain either. Paths that do not exist are left out.
//
// --uid and --gid (with --groups, the supplementary groups) make the job that user: the
// type's `run_as`, resolved by the supervisor.
//
// The job then runs with no capability (the bounding set included), `no_new_privs`, and,
// with --seccomp-fd, the BPF program the supervisor compiled from the type's profile
// (read from that descriptor), loaded as the very last step before execve.
//
// Any failure ends the launch at once: a one-line message goes to the report fd (if
// given, else stderr) and the exit status is 127. The report fd is close-on-exec, so
// the supervisor reads end-of-file when the exec succeeded and a message when not.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct launch_plan {
    const char *working_directory;  // NULL: stay where started
    int report_fd;                  // -1: report on stderr
    long nofile;                    // -1: inherit RLIMIT_NOFILE
    const char *cgroup;             // NULL: stay in the supervisor's cgroup
    int seccomp_fd;                 // -1: no seccomp filter
    const char *joins[4];           // cgroup v1 directories to join
    int join_count;
    long address_space;             // -1: inherit RLIMIT_AS
    long processes;                 // -1: inherit RLIMIT_NPROC
    long uid;                       // -1: stay the supervisor's user
    long gid;
    gid_t groups[64];               // supplementary groups with --uid
    int group_count;
    int landlock_abi;               // 0: no Landlock
    const char **read_paths;        // --read, read_count of them
    int read_count;
    const char **write_paths;       // --write, write_count of them
    int write_count;
    const char **write_file_paths;  // --write-files, write_file_count of them
    int write_file_count;
    char **argv;                    // the job's argv; argv[0] is the program
};

static int report_fd = -1;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *format, ...) {
    char message[1024];
    va_list arguments;
    va_start(arguments, format);
    int length = vsnprintf(message, sizeof message - 1, format, arguments);
    va_end(arguments);
    if (length < 0) length = 0;
    if (length > (int)sizeof message - 2) length = (int)sizeof message - 2;
    message[length++] = '\n';
    int fd = report_fd >= 0 ? report_fd : STDERR_FILENO;
    ssize_t ignored = write(fd, message, (size_t)length);
    (void)ignored;
    _exit(127);
}

static long parse_number(const char *option, const char *text, long minimum, long maximum) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < minimum || value > maximum)
        fail("supervisor-launch: %s needs a number from %ld to %ld, not \"%s\"", option, minimum, maximum, text);
    return value;
}

static struct launch_plan parse_plan(int argc, char **argv) {
    struct launch_plan plan = {
        .working_directory = NULL, .report_fd = -1, .nofile = -1, .cgroup = NULL, .seccomp_fd = -1,
        .join_count = 0, .address_space = -1, .processes = -1, .uid = -1, .gid = -1, .group_count = 0,
        .landlock_abi = 0, .read_count = 0,
        .write_count = 0, .write_file_count = 0, .argv = NULL};
    // At most one path per argument: these arrays cannot overflow.
    plan.read_paths = calloc((size_t)argc, sizeof(char *));
    plan.write_paths = calloc((size_t)argc, sizeof(char *));
    plan.write_file_paths = calloc((size_t)argc, sizeof(char *));
    if (!plan.read_paths || !plan.write_paths || !plan.write_file_paths) fail("supervisor-launch: out of memory");
    int index = 1;
    for (; index < argc; index++) {
        const char *option = argv[index];
        if (strcmp(option, "--") == 0) {
            index++;
            break;
        }
        if (index + 1 >= argc) fail("supervisor-launch: %s needs a value", option);
        const char *value = argv[++index];
        if (strcmp(option, "--cwd") == 0) {
            plan.working_directory = value;
        } else if (strcmp(option, "--report-fd") == 0) {
            plan.report_fd = (int)parse_number(option, value, 3, INT_MAX);
            report_fd = plan.report_fd;
        } else if (strcmp(option, "--cgroup") == 0) {
            plan.cgroup = value;
        } else if (strcmp(option, "--join") == 0) {
            if (plan.join_count == (int)(sizeof plan.joins / sizeof plan.joins[0]))
                fail("supervisor-launch: too many --join");
            plan.joins[plan.join_count++] = value;
        } else if (strcmp(option, "--rlimit-as") == 0) {
            plan.address_space = parse_number(option, value, 1L << 20, LONG_MAX);
        } else if (strcmp(option, "--nproc") == 0) {
            plan.processes = parse_number(option, value, 1, 1L << 22);
        } else if (strcmp(option, "--uid") == 0) {
            plan.uid = parse_number(option, value, 0, UINT_MAX - 1);
        } else if (strcmp(option, "--gid") == 0) {
            plan.gid = parse_number(option, value, 0, UINT_MAX - 1);
        } else if (strcmp(option, "--groups") == 0) {
            char *list = strdup(value);
            if (!list) fail("supervisor-launch: out of memory");
            for (char *item = strtok(list, ","); item; item = strtok(NULL, ",")) {
                if (plan.group_count == (int)(sizeof plan.groups / sizeof plan.groups[0]))
                    fail("supervisor-launch: more than 64 --groups");
                plan.groups[plan.group_count++] = (gid_t)parse_number(option, item, 0, UINT_MAX - 1);
            }
            free(list);
        } else if (strcmp(option, "--landlock") == 0) {
            plan.landlock_abi = (int)parse_number(option, value, 1, 1000);
        } else if (strcmp(option, "--read") == 0) {
            plan.read_paths[plan.read_count++] = value;
        } else if (strcmp(option, "--write") == 0) {
            plan.write_paths[plan.write_count++] = value;
        } else if (strcmp(option, "--write-files") == 0) {
            plan.write_file_paths[plan.write_file_count++] = value;
        } else if (strcmp(option, "--seccomp-fd") == 0) {
            plan.seccomp_fd = (int)parse_number(option, value, 3, INT_MAX);
        } else if (strcmp(option, "--nofile") == 0) {
            plan.nofile = parse_number(option, value, 16, 1L << 20);
        } else {
            fail("supervisor-launch: unknown option %s", option);
        }
    }
    if (index >= argc) fail("supervisor-launch: no command after --");
    if ((plan.uid < 0) != (plan.gid < 0)) fail("supervisor-launch: --uid and --gid go together");
    plan.argv = &argv[index];
    return plan;
}

// Every descriptor but stdin, stdout, stderr and the report fd is closed, so nothing of
// the supervisor (its store, its sockets) leaks into the job.
// It runs before RLIMIT_NOFILE is lowered, so the fallback loop reaches every descriptor.
static void close_stray_descriptors(int keep) {
    if (keep < 0) {
        if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
    } else if ((keep == 3 || syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U) == 0) &&
               syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0) {
        return;
    }
    long maximum = sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < maximum; fd++)
        if (fd != keep) close((int)fd);
}

// The compiled filter: whole `struct sock_filter` instructions, read with pread because
// every attempt's launcher shares the one descriptor (and its offset).
static struct sock_fprog read_filter(int fd) {
    struct stat info;
    if (fstat(fd, &info) != 0) fail("supervisor-launch: seccomp fd %d: %s", fd, strerror(errno));
    size_t size = (size_t)info.st_size;
    if (size == 0 || size % sizeof(struct sock_filter) != 0 || size > BPF_MAXINSNS * sizeof(struct sock_filter))
        fail("supervisor-launch: seccomp fd %d holds %zu bytes, not a BPF program", fd, size);
    struct sock_filter *instructions = malloc(size);
    if (!instructions) fail("supervisor-launch: out of memory");
    if (pread(fd, instructions, size, 0) != (ssize_t)size) fail("supervisor-launch: cannot read seccomp fd %d", fd);
    close(fd);
    return (struct sock_fprog){.len = (unsigned short)(size / sizeof(struct sock_filter)), .filter = instructions};
}

// Every capability goes: the bounding set (so an execve of a set-uid or file-capability
// program cannot bring one back), the ambient, inheritable, permitted and effective sets.
// Without CAP_SETPCAP (a supervisor not running as root, or a launcher started by a job)
// the bounding set cannot shrink, but then there is no capability to pass on, and
// no_new_privs stops any gain.
// With --uid the job becomes that user between the two: the bounding set needs
// CAP_SETPCAP, and the change of user CAP_SETUID and CAP_SETGID.
static void drop_capabilities(const struct launch_plan *plan) {
    for (int capability = 0;; capability++) {
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) == 0) continue;
        // EINVAL: past the kernel's last capability. EPERM (checked first by the kernel):
        // no CAP_SETPCAP, so no capability to drop either.
        if (errno == EINVAL || errno == EPERM) break;
        fail("supervisor-launch: cannot drop capability %d: %s", capability, strerror(errno));
    }
    if (plan->uid >= 0) {
        if (setgroups((size_t)plan->group_count, plan->groups) != 0) fail("supervisor-launch: setgroups: %s", strerror(errno));
        if (setresgid((gid_t)plan->gid, (gid_t)plan->gid, (gid_t)plan->gid) != 0)
            fail("supervisor-launch: cannot become group %ld: %s", plan->gid, strerror(errno));
        if (setresuid((uid_t)plan->uid, (uid_t)plan->uid, (uid_t)plan->uid) != 0)
            fail("supervisor-launch: cannot become user %ld: %s", plan->uid, strerror(errno));
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        fail("supervisor-launch: cannot clear ambient capabilities: %s", strerror(errno));
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
    memset(none, 0, sizeof none);
    if (syscall(SYS_capset, &header, none) != 0) fail("supervisor-launch: cannot drop capabilities: %s", strerror(errno));
}

// Sets both the soft and the hard limit; never above the hard limit the launcher has,
// which only a privileged process could raise.
static void set_limit(int resource, const char *name, long value) {
    struct rlimit current;
    if (getrlimit(resource, &current) != 0) fail("supervisor-launch: %s: %s", name, strerror(errno));
    rlim_t wanted = (rlim_t)value;
    if (current.rlim_max != RLIM_INFINITY && wanted > current.rlim_max && geteuid() != 0) wanted = current.rlim_max;
    struct rlimit limit = {wanted, wanted};
    if (setrlimit(resource, &limit) != 0) fail("supervisor-launch: %s %ld: %s", name, value, strerror(errno));
}

// Newer than Debian 12's <linux/landlock.h>; the kernel takes the longer attribute and
// reads what its ABI knows.
struct landlock_attributes {
    __u64 handled_access_fs;
    __u64 handled_access_net;
    __u64 scoped;
};
#define ACCESS_FS_TRUNCATE (1ULL << 14)   // ABI 3
#define ACCESS_FS_IOCTL_DEV (1ULL << 15)  // ABI 5
#define SCOPE_SIGNAL (1ULL << 1)          // ABI 6
#define ACCESS_FS_READ (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
// The rights a rule on a file (not a directory) may carry.
#define ACCESS_FS_ON_FILES \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | ACCESS_FS_TRUNCATE | \
     ACCESS_FS_IOCTL_DEV)

static void allow_beneath(int ruleset, const char *path, __u64 access) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return;
        fail("supervisor-launch: Landlock: cannot open %s: %s", path, strerror(errno));
    }
    struct stat info;
    if (fstat(fd, &info) != 0) fail("supervisor-launch: Landlock: %s: %s", path, strerror(errno));
    struct landlock_path_beneath_attr rule = {
        .allowed_access = S_ISDIR(info.st_mode) ? access : (access & ACCESS_FS_ON_FILES), .parent_fd = fd};
    if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0)
        fail("supervisor-launch: Landlock: cannot allow %s: %s", path, strerror(errno));
    close(fd);
}

// Needs no_new_privs (set before) and must come before the seccomp filter, which need
// not allow the Landlock calls.
static void confine_file_system(const struct launch_plan *plan) {
    int abi = plan->landlock_abi;
    __u64 handled = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // ABI 1: bits 0-12
    if (abi >= 2) handled |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3) handled |= ACCESS_FS_TRUNCATE;
    if (abi >= 5) handled |= ACCESS_FS_IOCTL_DEV;
    struct landlock_attributes attributes = {
        .handled_access_fs = handled, .handled_access_net = 0, .scoped = abi >= 6 ? SCOPE_SIGNAL : 0};
    size_t size = abi >= 6 ? sizeof attributes : sizeof attributes.handled_access_fs;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attributes, size, 0);
    if (ruleset < 0) fail("supervisor-launch: Landlock ABI %d: cannot create a ruleset: %s", abi, strerror(errno));
    for (int index = 0; index < plan->read_count; index++)
        allow_beneath(ruleset, plan->read_paths[index], ACCESS_FS_READ & handled);
    for (int index = 0; index < plan->write_count; index++) allow_beneath(ruleset, plan->write_paths[index], handled);
    for (int index = 0; index < plan->write_file_count; index++)
        allow_beneath(ruleset, plan->write_file_paths[index], (ACCESS_FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE) & handled);
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
        fail("supervisor-launch: Landlock: cannot restrict the job: %s", strerror(errno));
    close(ruleset);
}

// Moves this process into a cgroup (v1 controllers, or v2 before Linux 5.7).
static void join_cgroup(const char *directory) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/cgroup.procs", directory) >= (int)sizeof path)
        fail("supervisor-launch: cgroup path too long: %s", directory);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail("supervisor-launch: cannot open %s: %s", path, strerror(errno));
    if (write(fd, "0\n", 2) != 2) fail("supervisor-launch: cannot join cgroup %s: %s", directory, strerror(errno));
    close(fd);
}

// Creates the job's process inside the cgroup, so every process the job ever forks is
// listed there and ended by its cgroup.kill. Returns the child's pid in the launcher,
// 0 in the job, and -1 when the kernel cannot (the launcher then joined the cgroup itself
// and becomes the job).
static pid_t fork_into_cgroup(const char *directory) {
    int fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail("supervisor-launch: cannot open cgroup %s: %s", directory, strerror(errno));
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = (unsigned long long)fd;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    int error = errno;
    if (pid != 0) close(fd);
    if (pid > 0) return (pid_t)pid;
    if (pid == 0) {
        close(fd);
        return 0;
    }
    if (error != ENOSYS && error != E2BIG && error != EINVAL)
        fail("supervisor-launch: cannot start the job in cgroup %s: %s", directory, strerror(error));
    join_cgroup(directory);
    return -1;
}

// The launcher's part once the job runs: wait, and end the way the job ended. Signals
// for the tree reach the job through its cgroup and process group; the launcher blocks
// them so that a SIGTERM's grace is the job's to use, and holds none of its descriptors.
__attribute__((noreturn)) static void relay_exit(pid_t job) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd <= 2 && null >= 0; fd++) dup2(null, fd);
    if (report_fd >= 0) close(report_fd);
    syscall(SYS_close_range, 3U, ~0U, 0U);

    int status = 0;
    while (waitpid(job, &status, 0) < 0)
        if (errno != EINTR) _exit(127);
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    int number = WTERMSIG(status);
    signal(number, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, number);
    kill(getpid(), number);
    sigprocmask(SIG_UNBLOCK, &only, NULL);
    _exit(128 + number);
}

static void carry_out(const struct launch_plan *plan) {
    pid_t parent = getppid();

    // Its own session and process group, so the whole tree can be signalled at once. A
    // spawner may have made it a session leader already (POSIX_SPAWN_SETSID).
    if (getsid(0) != getpid() && setsid() < 0) fail("supervisor-launch: setsid: %s", strerror(errno));

    // Die with the supervisor. If it already died before this took effect, stop here.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("supervisor-launch: PR_SET_PDEATHSIG: %s", strerror(errno));
    if (getppid() != parent) fail("supervisor-launch: the supervisor exited during the launch");

    // No core dumps, from here on: not of the job, nor of the launcher when it passes on
    // a job's fatal signal by raising it on itself.
    struct rlimit no_core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0) fail("supervisor-launch: RLIMIT_CORE: %s", strerror(errno));

    if (plan->cgroup) {
        pid_t launcher = getpid();
        pid_t job = fork_into_cgroup(plan->cgroup);
        if (job > 0) relay_exit(job);
        // The job dies with the launcher, which dies with the supervisor.
        if (job == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("supervisor-launch: PR_SET_PDEATHSIG: %s", strerror(errno));
            if (getppid() != launcher) fail("supervisor-launch: the launcher exited during the launch");
        }
    }

    // Before anything of the job runs, so all it forks is counted against its limits.
    for (int index = 0; index < plan->join_count; index++) join_cgroup(plan->joins[index]);

    struct sock_fprog filter = {.len = 0, .filter = NULL};
    if (plan->seccomp_fd >= 0) filter = read_filter(plan->seccomp_fd);

    close_stray_descriptors(plan->report_fd);
    if (plan->report_fd >= 0 && fcntl(plan->report_fd, F_SETFD, FD_CLOEXEC) != 0)
        fail("supervisor-launch: report fd %d: %s", plan->report_fd, strerror(errno));

    if (plan->nofile > 0) set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", plan->nofile);
    if (plan->address_space > 0) set_limit(RLIMIT_AS, "RLIMIT_AS", plan->address_space);
    if (plan->processes > 0) set_limit(RLIMIT_NPROC, "RLIMIT_NPROC", plan->processes);

    if (plan->working_directory && chdir(plan->working_directory) != 0)
        fail("supervisor-launch: cannot enter %s: %s", plan->working_directory, strerror(errno));

    drop_capabilities(plan);

    // Signals the supervisor may have blocked or ignored are not the job's business.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int number = 1; number < NSIG; number++)
        if (number != SIGKILL && number != SIGSTOP) signal(number, SIG_DFL);

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("supervisor-launch: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    if (plan->landlock_abi > 0) confine_file_system(plan);
    // Last: from here on the job's filter judges every call, execve included.
    if (filter.filter && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) != 0)
        fail("supervisor-launch: cannot load the seccomp filter: %s", strerror(errno));

    execvpe(plan->argv[0], plan->argv, environ);
    fail("supervisor-launch: cannot run %s: %s", plan->argv[0], strerror(errno));
}

int main(int argc, char **argv) {
    struct launch_plan plan = parse_plan(argc, argv);
    carry_out(&plan);
    return 127;
}
