/* Key files: the PrivateKey protobuf, written atomically with mode 0600. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flare/keys.h"

#define KEYFILE_MAX 256

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return FLARE_ERR_IO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int flare_privkey_save(const flare_privkey *k, const char *path)
{
    if (!k || !path)
        return FLARE_ERR_INVALID_ARG;
    uint8_t buf[KEYFILE_MAX];
    int n = flare_privkey_encode(k, buf, sizeof(buf));
    if (n < 0)
        return n;
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        sodium_memzero(buf, sizeof(buf));
        return FLARE_ERR_INVALID_ARG;
    }
    /* A temporary left by a crash would block O_EXCL forever. O_EXCL makes
     * sure we never write a secret into a file someone else opened first. */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        sodium_memzero(buf, sizeof(buf));
        return FLARE_ERR_IO;
    }
    int rv = write_all(fd, buf, (size_t)n);
    sodium_memzero(buf, sizeof(buf));
    if (rv == 0 && fsync(fd) != 0)
        rv = FLARE_ERR_IO;
    if (close(fd) != 0 && rv == 0)
        rv = FLARE_ERR_IO;
    if (rv == 0 && rename(tmp, path) != 0)
        rv = FLARE_ERR_IO;
    if (rv)
        unlink(tmp);
    return rv;
}

int flare_privkey_load(flare_privkey *k, const char *path)
{
    return flare_privkey_load_mode(k, path, NULL);
}

int flare_privkey_load_mode(flare_privkey *k, const char *path, unsigned *mode)
{
    if (!k || !path)
        return FLARE_ERR_INVALID_ARG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? FLARE_ERR_NOT_FOUND : FLARE_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return FLARE_ERR_IO;
    }
    if (mode)
        *mode = (unsigned)st.st_mode & 07777u;
    uint8_t buf[KEYFILE_MAX + 1];
    size_t len = 0;
    int rv = 0;
    while (len < sizeof(buf)) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rv = FLARE_ERR_IO;
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (rv == 0)
        rv = len > KEYFILE_MAX ? FLARE_ERR_TOO_LARGE : flare_privkey_decode(k, buf, len);
    sodium_memzero(buf, sizeof(buf));
    return rv;
}
