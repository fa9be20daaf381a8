# Workload through a tunnel's local port: trickle, bulk, idle. Prints RTT stats and bulk rate.
import socket, sys, time, threading, os
port = int(sys.argv[1])
def connect():
    for _ in range(100):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.1)
    raise SystemExit("no tunnel")
s = connect()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def recv_exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise SystemExit("eof")
        b += c
    return b
rtts = []
end = time.time() + float(sys.argv[2])
while time.time() < end:
    t = time.time(); s.sendall(b"x" * 100); recv_exact(100); rtts.append((time.time() - t) * 1000)
    time.sleep(0.25)
rtts.sort()
print(f"trickle: {len(rtts)} round trips, median {rtts[len(rtts)//2]:.2f} ms, max {rtts[-1]:.1f} ms")
total = 50 << 20
data = os.urandom(1 << 20)
got = [0]
def reader():
    while got[0] < total:
        c = s.recv(1 << 20)
        if not c: break
        got[0] += len(c)
t = time.time(); th = threading.Thread(target=reader); th.start()
for i in range(50): s.sendall(data)
th.join(); dt = time.time() - t
print(f"bulk: {got[0]} bytes echoed in {dt:.2f} s ({got[0]*8/dt/1e6:.0f} Mbit/s each way)")
time.sleep(float(sys.argv[3]))
t = time.time(); s.sendall(b"y" * 100); recv_exact(100)
print(f"after {sys.argv[3]} s idle: round trip {(time.time()-t)*1000:.2f} ms")
s.close()
