#!/usr/bin/env python3
"""Writes tone.ogg, the audio bots send: one second of Opus (48 kHz, mono,
20 ms packets) to be played in a loop: a 440 Hz tone at -20 dBFS with a
100 ms 880 Hz beep at -12 dBFS at the start of the second.

It is encoded once with libopus (the reference encoder, through ctypes; on
Debian: apt-get install libopus0) and kept in the repository, so that bots
need no encoder. Run it from this folder: python3 gentone.py
"""
import ctypes
import ctypes.util
import math
import struct

RATE, FRAME = 48000, 960  # 20 ms
OPUS_APPLICATION_AUDIO = 2049
OPUS_SET_BITRATE = 4002
OPUS_GET_LOOKAHEAD = 4027


def pcm_second():
    out = []
    for n in range(RATE):
        t = n / RATE
        v = 0.1 * math.sin(2 * math.pi * 440 * t)
        if n < RATE // 10:  # the beep, faded in and out over 5 ms
            fade = min(1.0, n / 240, (RATE // 10 - n) / 240)
            v += 0.25 * fade * math.sin(2 * math.pi * 880 * t)
        out.append(int(round(v * 32767)))
    return out


def encode():
    lib = ctypes.CDLL(ctypes.util.find_library("opus") or "libopus.so.0")
    lib.opus_encoder_create.restype = ctypes.c_void_p
    err = ctypes.c_int()
    enc = lib.opus_encoder_create(RATE, 1, OPUS_APPLICATION_AUDIO, ctypes.byref(err))
    assert err.value == 0, err.value
    lib.opus_encoder_ctl(ctypes.c_void_p(enc), OPUS_SET_BITRATE, ctypes.c_int(32000))
    lookahead = ctypes.c_int()
    lib.opus_encoder_ctl(ctypes.c_void_p(enc), OPUS_GET_LOOKAHEAD, ctypes.byref(lookahead))
    pcm = pcm_second()
    packets = []
    # Two seconds of the periodic signal; the second one, encoded by an
    # encoder in its steady state, loops without a click.
    for second in range(2):
        for i in range(0, RATE, FRAME):
            frame = (ctypes.c_int16 * FRAME)(*pcm[i:i + FRAME])
            buf = (ctypes.c_ubyte * 1500)()
            n = lib.opus_encode(ctypes.c_void_p(enc), frame, FRAME, buf, 1500)
            assert n > 0, n
            if second == 1:
                packets.append(bytes(buf[:n]))
    lib.opus_encoder_destroy(ctypes.c_void_p(enc))
    return packets, lookahead.value


def crc32_ogg(data):
    crc = 0
    for b in data:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def page(payload, granule, seq, flags):
    segs = [255] * (len(payload) // 255) + [len(payload) % 255]
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, 0x49565352, seq, 0, len(segs)) + bytes(segs)
    crc = crc32_ogg(header + payload)
    return header[:22] + struct.pack("<I", crc) + header[26:] + payload


def main():
    packets, preskip = encode()
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, preskip, RATE, 0, 0)
    vendor = b"ivsrt gentone.py"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    out = page(head, 0, 0, 0x02) + page(tags, 0, 1, 0)
    granule = 0
    for i, p in enumerate(packets):
        granule += FRAME
        out += page(p, granule, i + 2, 0x04 if i == len(packets) - 1 else 0)
    with open("tone.ogg", "wb") as f:
        f.write(out)
    print("tone.ogg: %d packets, %d bytes" % (len(packets), len(out)))


if __name__ == "__main__":
    main()
