"""The ports the tests and benchmarks give their servers (collective.zasync.dev.cluster.free_port).

A port that ``bind(0)`` found free could become the local end of an outgoing connection
before the server bound it ("Address already in use"), and two test processes could pick
the same one: free_port picks below the kernel's range for outgoing connections, never
hands out a port twice, and sibling processes walk different slices.
"""

from collective.zasync.dev.cluster import free_port
from pathlib import Path

import socket
import subprocess
import sys
import unittest


def outgoing_range():
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


class FreePortTests(unittest.TestCase):

    def test_ports_are_free_distinct_and_outside_the_outgoing_range(self):
        ports = [free_port() for _ in range(20)]
        self.assertEqual(len(set(ports)), 20)
        low, _high = outgoing_range()
        for port in ports:
            self.assertLess(port, low)
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))  # free: binds

    def test_a_port_in_use_is_skipped(self):
        taken = free_port() + 1  # the next candidate of this process
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", taken))
            holder.listen()
            self.assertNotEqual(free_port(), taken)

    def test_sibling_processes_pick_different_ports(self):
        code = "from collective.zasync.dev.cluster import free_port; print(*[free_port() for _ in range(50)])"
        processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
                     for _ in range(2)]
        first, second = (set(map(int, p.communicate()[0].split())) for p in processes)
        self.assertEqual(len(first), 50)
        self.assertFalse(first & second)
