/*
 * Fault injection at the OS boundary for the state file, loaded into the real
 * signer with LD_PRELOAD by tests/faults.rs. While the file named by
 * $TMKMS_FAULT_FILE contains EROFS, ENOSPC or EIO, pwrite64() and fdatasync()
 * fail with that errno, exactly as a read-only remount, a full copy-on-write
 * filesystem or a dying disk would make them fail.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int injected_errno(void) {
    const char *trigger = getenv("TMKMS_FAULT_FILE");
    if (trigger == NULL) return 0;
    int fd = open(trigger, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[16] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    if (strncmp(buf, "EROFS", 5) == 0) return EROFS;
    if (strncmp(buf, "ENOSPC", 6) == 0) return ENOSPC;
    if (strncmp(buf, "EIO", 3) == 0) return EIO;
    return 0;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    int e = injected_errno();
    if (e != 0) {
        errno = e;
        return -1;
    }
    if (real == NULL) real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    return real(fd, buf, count, offset);
}

int fdatasync(int fd) {
    static int (*real)(int);
    int e = injected_errno();
    if (e != 0) {
        errno = e;
        return -1;
    }
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
