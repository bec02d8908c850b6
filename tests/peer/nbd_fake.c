// SPDX-License-Identifier: MIT
/*
 * A misbehaving NBD server for the NBD engine's tests (see nbd_fake.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/peer/nbd_fake.h"

#define OPT_MAGIC	0x49484156454F5054ull
#define OPTREP_MAGIC	0x3e889045565a9ull
#define REQ_MAGIC	0x25609513u
#define SIMPLE_MAGIC	0x67446698u
#define CHUNK_MAGIC	0x668e33efu
#define OPT_GO		7
#define OPT_INFO	6
#define OPT_SR		8
#define REP_ACK		1
#define REP_INFO	3
#define REP_ERR_UNSUP	0x80000001u
#define CMD_READ	0
#define CMD_DISC	2
#define CHUNK_DONE	1
#define CHUNK_NONE	0
#define CHUNK_DATA	1
/* HAS_FLAGS | READ_ONLY | SEND_FLUSH */
#define EXPORT_FLAGS	(1 | 2 | 4)

static bool rx(int fd, void *buf, size_t len)
{
	ssize_t k;

	for (; len; len -= k, buf = (char *)buf + k) {
		k = read(fd, buf, len);
		if (k <= 0)
			return false;
	}
	return true;
}

static bool tx(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len) == (ssize_t)len;
}

static void put_be(uint8_t *p, unsigned int bytes, uint64_t v)
{
	while (bytes--) {
		p[bytes] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	while (bytes--)
		v = v << 8 | *p++;
	return v;
}

static bool opt_reply(int fd, uint32_t opt, uint32_t type, const uint8_t *data, uint32_t len)
{
	uint8_t h[20];

	put_be(h, 8, OPTREP_MAGIC);
	put_be(h + 8, 4, opt);
	put_be(h + 12, 4, type);
	put_be(h + 16, 4, len);
	return tx(fd, h, sizeof(h)) && (!len || tx(fd, data, len));
}

/* Fixed newstyle options up to GO; *sr: structured replies were asked for. */
static bool handshake(int fd, bool *sr)
{
	uint8_t buf[18 + 4096], info[12];

	memcpy(buf, "NBDMAGIC", 8);
	put_be(buf + 8, 8, OPT_MAGIC);
	put_be(buf + 16, 2, 3);
	if (!tx(fd, buf, 18) || !rx(fd, buf, 4))
		return false;
	for (;;) {
		uint32_t opt, len;

		if (!rx(fd, buf, 16))
			return false;
		opt = (uint32_t)get_be(buf + 8, 4);
		len = (uint32_t)get_be(buf + 12, 4);
		if (len > sizeof(buf) || !rx(fd, buf, len))
			return false;
		if (opt == OPT_SR) {
			*sr = true;
			if (!opt_reply(fd, opt, REP_ACK, NULL, 0))
				return false;
		} else if (opt == OPT_GO || opt == OPT_INFO) {
			put_be(info, 2, 0);
			put_be(info + 2, 8, NBD_FAKE_SIZE);
			put_be(info + 10, 2, EXPORT_FLAGS);
			return opt_reply(fd, opt, REP_INFO, info, sizeof(info)) &&
			       opt_reply(fd, opt, REP_ACK, NULL, 0);
		} else if (!opt_reply(fd, opt, REP_ERR_UNSUP, NULL, 0)) {
			return false;
		}
	}
}

/* Half of a READ: a data chunk and a successful end, or a reply cut short. */
static bool short_read(int fd, bool sr, const uint8_t *handle, uint64_t off, uint32_t len)
{
	static uint8_t data[NBD_FAKE_SIZE];
	uint8_t h[28];
	uint32_t half = len / 2;

	memset(data, 0xab, half);
	if (!sr) {
		put_be(h, 4, SIMPLE_MAGIC);
		put_be(h + 4, 4, 0);
		memcpy(h + 8, handle, 8);
		tx(fd, h, 16);
		tx(fd, data, half);
		return false;
	}
	put_be(h, 4, CHUNK_MAGIC);
	put_be(h + 4, 2, 0);
	put_be(h + 6, 2, CHUNK_DATA);
	memcpy(h + 8, handle, 8);
	put_be(h + 16, 4, 8 + half);
	put_be(h + 20, 8, off);
	if (!tx(fd, h, 28) || !tx(fd, data, half))
		return false;
	put_be(h + 4, 2, CHUNK_DONE);
	put_be(h + 6, 2, CHUNK_NONE);
	put_be(h + 16, 4, 0);
	return tx(fd, h, 20);
}

/*
 * A READ answered whole: a simple reply and zeros; with a handle no
 * request carried (each byte flipped), or as garbage (a bad magic).
 */
static bool full_read(int fd, enum nbd_fake_mode mode, const uint8_t *handle, uint32_t len)
{
	static uint8_t zeros[NBD_FAKE_SIZE];
	uint8_t h[16];
	unsigned int i;

	put_be(h, 4, mode == NBD_FAKE_GARBAGE ? 0x0badf00du : SIMPLE_MAGIC);
	put_be(h + 4, 4, 0);
	for (i = 0; i < 8; i++)
		h[8 + i] = mode == NBD_FAKE_WRONG_HANDLE ? (uint8_t)~handle[i] : handle[i];
	if (mode == NBD_FAKE_GARBAGE)
		return tx(fd, h, 16) && (pause(), false);
	return len <= sizeof(zeros) && tx(fd, h, 16) && tx(fd, zeros, len);
}

static void serve(int fd, enum nbd_fake_mode mode)
{
	uint8_t req[28], rep[16];
	bool sr = false, ok;

	if (!handshake(fd, &sr))
		return;
	while (rx(fd, req, sizeof(req)) && get_be(req, 4) == REQ_MAGIC) {
		uint16_t type = (uint16_t)get_be(req + 6, 2);

		if (type == CMD_DISC)
			return;
		if (type == CMD_READ && mode != NBD_FAKE_SHORT_READS) {
			ok = full_read(fd, mode, req + 8, (uint32_t)get_be(req + 24, 4));
		} else if (type == CMD_READ) {
			ok = short_read(fd, sr, req + 8, get_be(req + 16, 8),
					(uint32_t)get_be(req + 24, 4));
		} else {
			put_be(rep, 4, SIMPLE_MAGIC);
			put_be(rep + 4, 4, 0);
			memcpy(rep + 8, req + 8, 8);
			ok = tx(fd, rep, sizeof(rep));
		}
		if (!ok)
			return;
	}
}

pid_t nbd_fake_start(const char *sock, enum nbd_fake_mode mode)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), fd;
	pid_t pid;

	assert_true(ls >= 0);
	assert_true(strlen(sock) < sizeof(un.sun_path));
	memcpy(un.sun_path, sock, strlen(sock) + 1);
	unlink(sock);
	assert_int_equal(bind(ls, (struct sockaddr *)&un, sizeof(un)), 0);
	assert_int_equal(listen(ls, 4), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid) {
		close(ls);
		return pid;
	}
	while ((fd = accept(ls, NULL, NULL)) >= 0) {
		serve(fd, mode);
		close(fd);
	}
	_exit(0);
}
