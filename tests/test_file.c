/* test_file.c - src/file.c, the one writer of every output: what it does to
 * what a path names (a new file, an existing file and its mode, a symbolic
 * link, a device, a FIFO, a directory), temporaries (names, removal by the
 * signal registry, stale ones of dead writers) and same-file detection.
 * Expected values are the file system's own (stat, readlink, contents). */
#define _DEFAULT_SOURCE /* flock */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "file.h"

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "test_file_tmp_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(path);
}

static int teardown(void **state) {
    (void)state;
    remove_tree(dir);
    return 0;
}

static const char *in_dir(const char *name) {
    static char buf[4][PATH_MAX];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", dir, name);
    return p;
}

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect_content(const char *path, const char *text) {
    char buf[256] = "";
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(buf, text);
}

/* Entries of the directory other than . and .., counted. */
static int entries(const char *path) {
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Writes text to path through file.c; returns the status. */
static fusenet_status write_text(const char *path, const char *text, fusenet_error *err) {
    char *tmp;
    int fd = fusenet__temp_open(path, &tmp, err);
    if (fd < 0) return err->status;
    int ok = fusenet__write_full(fd, text, strlen(text));
    return fusenet__temp_close(fd, tmp, path, ok, errno, err);
}

static void new_file_gets_umask_mode(void **state) {
    (void)state;
    fusenet_error err;
    mode_t mask = umask(022);
    assert_int_equal(write_text(in_dir("new.txt"), "fresh\n", &err), FUSENET_OK);
    umask(mask);
    struct stat sb;
    assert_int_equal(stat(in_dir("new.txt"), &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644);
    expect_content(in_dir("new.txt"), "fresh\n");
    assert_int_equal(entries(dir), 1); /* no temporary left */
}

static void replaced_file_keeps_its_mode(void **state) {
    (void)state;
    fusenet_error err;
    put(in_dir("secret.txt"), "old\n");
    assert_int_equal(chmod(in_dir("secret.txt"), 0600), 0);
    assert_int_equal(write_text(in_dir("secret.txt"), "new\n", &err), FUSENET_OK);
    struct stat sb;
    assert_int_equal(stat(in_dir("secret.txt"), &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    expect_content(in_dir("secret.txt"), "new\n");
    put(in_dir("shared.txt"), "old\n");
    assert_int_equal(chmod(in_dir("shared.txt"), 0664), 0);
    assert_int_equal(write_text(in_dir("shared.txt"), "new\n", &err), FUSENET_OK);
    assert_int_equal(stat(in_dir("shared.txt"), &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0664);
    assert_int_equal(entries(dir), 2);
}

static void failed_write_keeps_old_file(void **state) {
    (void)state;
    fusenet_error err;
    put(in_dir("keep.txt"), "old\n");
    char *tmp;
    int fd = fusenet__temp_open(in_dir("keep.txt"), &tmp, &err);
    assert_true(fd >= 0);
    assert_non_null(tmp);
    assert_true(fusenet__write_full(fd, "partial", 7));
    assert_int_equal(fusenet__temp_close(fd, tmp, in_dir("keep.txt"), 0, ENOSPC, &err), FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, "keep.txt"));
    assert_non_null(strstr(err.message, strerror(ENOSPC)));
    expect_content(in_dir("keep.txt"), "old\n");
    assert_int_equal(entries(dir), 1);
}

static void symlink_target_replaced(void **state) {
    (void)state;
    fusenet_error err;
    assert_int_equal(mkdir(in_dir("real"), 0755), 0);
    assert_int_equal(mkdir(in_dir("links"), 0755), 0);
    put(in_dir("real/target.txt"), "old\n");
    assert_int_equal(chmod(in_dir("real/target.txt"), 0640), 0);
    assert_int_equal(symlink("../real/target.txt", in_dir("links/hop2")), 0); /* relative, two hops */
    assert_int_equal(symlink("hop2", in_dir("links/out.txt")), 0);
    assert_int_equal(write_text(in_dir("links/out.txt"), "new\n", &err), FUSENET_OK);
    struct stat sb;
    assert_int_equal(lstat(in_dir("links/out.txt"), &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    char link[64] = "";
    assert_int_equal(readlink(in_dir("links/out.txt"), link, sizeof link - 1), 4);
    assert_string_equal(link, "hop2");
    expect_content(in_dir("real/target.txt"), "new\n");
    assert_int_equal(stat(in_dir("real/target.txt"), &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0640);
    assert_int_equal(entries(in_dir("links")), 2);
    assert_int_equal(entries(in_dir("real")), 1);
    /* a dangling link: its target is created */
    assert_int_equal(symlink("../real/later.txt", in_dir("links/dangling")), 0);
    assert_int_equal(write_text(in_dir("links/dangling"), "made\n", &err), FUSENET_OK);
    expect_content(in_dir("real/later.txt"), "made\n");
    assert_int_equal(lstat(in_dir("links/dangling"), &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    /* a loop */
    assert_int_equal(symlink("loop", in_dir("links/loop")), 0);
    assert_int_equal(write_text(in_dir("links/loop"), "x", &err), FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, strerror(ELOOP)));
}

static void devices_written_in_place(void **state) {
    (void)state;
    fusenet_error err;
    struct stat before, after;
    assert_int_equal(stat("/dev/null", &before), 0);
    assert_int_equal(write_text("/dev/null", "nothing\n", &err), FUSENET_OK);
    assert_int_equal(fusenet__output_check("/dev/null", "--output", &err), FUSENET_OK);
    assert_int_equal(stat("/dev/null", &after), 0);
    assert_true(S_ISCHR(after.st_mode));
    assert_true(before.st_ino == after.st_ino && before.st_rdev == after.st_rdev);
    if (stat("/dev/full", &before) == 0 && S_ISCHR(before.st_mode)) {
        assert_int_equal(write_text("/dev/full", "nothing\n", &err), FUSENET_ERR_IO);
        assert_non_null(strstr(err.message, "/dev/full"));
        assert_non_null(strstr(err.message, strerror(ENOSPC)));
        assert_int_equal(stat("/dev/full", &after), 0);
        assert_true(S_ISCHR(after.st_mode) && before.st_ino == after.st_ino);
    }
}

static void fifo_written_in_place(void **state) {
    (void)state;
    fusenet_error err;
    assert_int_equal(mkfifo(in_dir("pipe"), 0600), 0);
    int rd = open(in_dir("pipe"), O_RDONLY | O_NONBLOCK); /* a reader, so the writer's open returns */
    assert_true(rd >= 0);
    assert_int_equal(write_text(in_dir("pipe"), "through\n", &err), FUSENET_OK);
    char buf[32] = "";
    assert_int_equal(read(rd, buf, sizeof buf - 1), 8);
    assert_string_equal(buf, "through\n");
    close(rd);
    struct stat sb;
    assert_int_equal(lstat(in_dir("pipe"), &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    assert_int_equal(entries(dir), 1);
}

static void directories_refused_up_front(void **state) {
    (void)state;
    fusenet_error err;
    assert_int_equal(mkdir(in_dir("sub"), 0755), 0);
    assert_int_equal(fusenet__output_check(in_dir("sub"), "--names", &err), FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, "--names"));
    assert_non_null(strstr(err.message, strerror(EISDIR)));
    assert_int_equal(fusenet__output_check(in_dir("sub/"), "--names", &err), FUSENET_ERR_IO);
    assert_int_equal(fusenet__output_check(in_dir("nodir/"), "--names", &err), FUSENET_ERR_IO);
    assert_int_equal(fusenet__output_check(in_dir("missing/x.npy"), "--output", &err), FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, strerror(ENOENT)));
    put(in_dir("plain"), "file\n");
    assert_int_equal(fusenet__output_check(in_dir("plain/x.npy"), "--output", &err), FUSENET_ERR_IO);
    assert_int_equal(fusenet__output_check("", "--output", &err), FUSENET_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "--output"));
    assert_int_equal(write_text(in_dir("sub"), "x", &err), FUSENET_ERR_IO);
    assert_int_equal(entries(in_dir("sub")), 0); /* no temporary made inside it */
    assert_int_equal(fusenet__output_check(in_dir("fine.npy"), "--output", &err), FUSENET_OK);
    assert_int_equal(entries(dir), 2); /* sub, plain: checking creates nothing */
}

static void longest_name_has_a_temporary(void **state) {
    (void)state;
    fusenet_error err;
    char name[NAME_MAX + 1];
    memset(name, 'n', NAME_MAX - 4);
    strcpy(name + NAME_MAX - 4, ".npy"); /* NAME_MAX bytes */
    assert_int_equal(strlen(name), NAME_MAX);
    assert_int_equal(write_text(in_dir(name), "long\n", &err), FUSENET_OK);
    expect_content(in_dir(name), "long\n");
    assert_int_equal(entries(dir), 1);
}

static void registry_removes_open_temporaries(void **state) {
    (void)state;
    fusenet_error err;
    put(in_dir("out.npy"), "old\n");
    char *tmp1, *tmp2;
    int fd1 = fusenet__temp_open(in_dir("out.npy"), &tmp1, &err);
    int fd2 = fusenet__temp_open(in_dir("other.npy"), &tmp2, &err);
    assert_true(fd1 >= 0 && fd2 >= 0);
    assert_int_equal(entries(dir), 3);
    assert_int_equal(access(tmp1, F_OK), 0);
    assert_null(strstr(tmp1, "out.npy")); /* short names, not the target's */
    fusenet__temp_remove_all(); /* what the CLI's SIGINT handler calls */
    assert_int_equal(entries(dir), 1);
    expect_content(in_dir("out.npy"), "old\n");
    fusenet__temp_close(fd1, tmp1, in_dir("out.npy"), 0, EINTR, &err);
    fusenet__temp_close(fd2, tmp2, in_dir("other.npy"), 0, EINTR, &err);
    assert_int_equal(entries(dir), 1);
}

static pid_t dead_pid(void) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return pid;
}

static void stale_temporaries_swept(void **state) {
    (void)state;
    fusenet_error err;
    char stale[64], live[64], locked[64], unlike[64], foreign[64];
    pid_t dead = dead_pid(), dead2 = dead_pid();
    snprintf(stale, sizeof stale, ".fusenet-%ld-0.tmp", (long)dead);
    snprintf(live, sizeof live, ".fusenet-%ld-0.tmp", (long)getppid());  /* a process that exists */
    snprintf(locked, sizeof locked, ".fusenet-%ld-1.tmp", (long)dead2);  /* lock held: a writer elsewhere */
    snprintf(unlike, sizeof unlike, ".fusenet-%ld-0.tmp~", (long)dead);  /* not exactly our pattern */
    snprintf(foreign, sizeof foreign, "fusenet-%ld-0.tmp", (long)dead);
    put(in_dir(stale), "x");
    put(in_dir(live), "x");
    put(in_dir(locked), "x");
    put(in_dir(unlike), "x");
    put(in_dir(foreign), "x");
    int lock_fd = open(in_dir(locked), O_RDONLY);
    assert_true(lock_fd >= 0);
    assert_int_equal(flock(lock_fd, LOCK_EX), 0);
    assert_int_equal(fusenet__output_check(in_dir("out.npy"), "--output", &err), FUSENET_OK);
    assert_int_equal(access(in_dir(stale), F_OK), -1);
    assert_int_equal(access(in_dir(live), F_OK), 0);
    assert_int_equal(access(in_dir(locked), F_OK), 0);
    assert_int_equal(access(in_dir(unlike), F_OK), 0);
    assert_int_equal(access(in_dir(foreign), F_OK), 0);
    close(lock_fd);
    assert_int_equal(fusenet__output_check(in_dir("out.npy"), "--output", &err), FUSENET_OK);
    assert_int_equal(access(in_dir(locked), F_OK), -1);
    assert_int_equal(entries(dir), 3);
}

static void same_file_by_inode(void **state) {
    (void)state;
    put(in_dir("a.png"), "a");
    put(in_dir("b.png"), "b");
    assert_int_equal(link(in_dir("a.png"), in_dir("hard.png")), 0);
    assert_int_equal(symlink("a.png", in_dir("soft.png")), 0);
    assert_true(fusenet__same_file(in_dir("a.png"), in_dir("a.png")));
    assert_true(fusenet__same_file(in_dir("hard.png"), in_dir("a.png")));
    assert_true(fusenet__same_file(in_dir("soft.png"), in_dir("a.png")));
    assert_false(fusenet__same_file(in_dir("b.png"), in_dir("a.png")));
    assert_false(fusenet__same_file(in_dir("none.png"), in_dir("none.png")));
    assert_false(fusenet__same_file("/dev/null", "/dev/null")); /* devices are never destroyed */
}

static void whole_inputs_read_with_checks(void **state) {
    (void)state;
    fusenet_error err;
    char *buf;
    size_t len;
    put(in_dir("names.txt"), "a.png\nb.jpg\n");
    assert_int_equal(fusenet__read_file(in_dir("names.txt"), 100, &buf, &len, &err), FUSENET_OK);
    assert_int_equal(len, 12);
    assert_string_equal(buf, "a.png\nb.jpg\n");
    free(buf);
    assert_int_equal(fusenet__read_file(in_dir("names.txt"), 11, &buf, &len, &err), FUSENET_ERR_NOMEM);
    assert_null(buf);
    assert_non_null(strstr(err.message, "12 bytes"));
    assert_int_equal(fusenet__read_file("/dev/zero", 100, &buf, &len, &err), FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, "not a regular file"));
    assert_int_equal(mkfifo(in_dir("fifo"), 0600), 0); /* no writer: must not block */
    assert_int_equal(fusenet__read_file(in_dir("fifo"), 100, &buf, &len, &err), FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, "not a regular file"));
    assert_int_equal(fusenet__read_file(dir, 100, &buf, &len, &err), FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, strerror(EISDIR)));
    assert_int_equal(fusenet__read_file(in_dir("none"), 100, &buf, &len, &err), FUSENET_ERR_IO);
    assert_non_null(strstr(err.message, strerror(ENOENT)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(new_file_gets_umask_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(replaced_file_keeps_its_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_write_keeps_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(symlink_target_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(devices_written_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(fifo_written_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(directories_refused_up_front, setup, teardown),
        cmocka_unit_test_setup_teardown(longest_name_has_a_temporary, setup, teardown),
        cmocka_unit_test_setup_teardown(registry_removes_open_temporaries, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_temporaries_swept, setup, teardown),
        cmocka_unit_test_setup_teardown(same_file_by_inode, setup, teardown),
        cmocka_unit_test_setup_teardown(whole_inputs_read_with_checks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
