"""The link budget, computed before anything is recorded: can the serial line carry the rate?

Streaming needs rate x (channels x 2 bytes + the framing each DATA frame adds, shared by its
samples) bytes a second; a UART at `baud` with 8N1 carries baud / 10. Above HEADROOM of it the
board spends its time blocked in writes and its FIFO overflows, so it does not fit: the samples
are captured into the board's RAM instead (a burst) and uploaded after, as long as its heap
holds them. The virtual board's link is a pipe with no baud: its budget is the throughput its
collect loop reaches flat out, measured first (edgeloop.collect.start.probe_virtual).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeloop.link import protocol as P

FRAME_BYTES = P.HEADER_SIZE + P.CRC_SIZE + 16  # link framing + the DATA header (wire.DATA_HEAD)
UART_BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop
HEADROOM = 0.75  # of the line's capacity a stream may use
BURST_RESERVE = 6144  # heap the board keeps beside a burst buffer (collect.py _RESERVE)


def default_batch(channels: int) -> int:
    """Samples per DATA frame the board sends (collect.py: 112 // channels)."""
    return max(1, 112 // channels)


@dataclass(frozen=True)
class Budget:
    rate_hz: float
    channels: int
    baud: int | None  # None: no serial line (the virtual board's pipe)
    batch: int
    measured_bps: float | None = None  # the virtual board: what its collect loop carried

    @property
    def bytes_per_sample(self) -> float:
        return 2 * self.channels + FRAME_BYTES / self.batch

    @property
    def need_bps(self) -> float:
        """Bytes a second the stream needs."""
        return self.rate_hz * self.bytes_per_sample

    @property
    def line_bps(self) -> float | None:
        return None if self.baud is None else self.baud / UART_BITS_PER_BYTE

    @property
    def use(self) -> float:
        """Fraction of the line (or of the virtual board's measured throughput) the stream
        would take; 0 with neither."""
        cap = self.line_bps if self.line_bps is not None else self.measured_bps
        return 0.0 if not cap else self.need_bps / cap

    @property
    def fits(self) -> bool:
        return self.use <= HEADROOM

    def burst_samples(self, heap_free: int) -> int:
        """Samples one burst can hold in the board's free heap."""
        return max(0, (heap_free - BURST_RESERVE) // (2 * self.channels))

    def describe(self) -> str:
        per = (f"{self.rate_hz:g} Hz x {self.channels} ch x 2 B + {FRAME_BYTES} B framing per "
               f"{self.batch} samples = {self.need_bps:,.0f} B/s")
        if self.line_bps is None and self.measured_bps:
            verdict = "fits" if self.fits else f"does NOT fit (a stream may use {HEADROOM:.0%})"
            return (f"link budget: {per} = {self.use:.0%} of the {self.measured_bps:,.0f} B/s "
                    f"the virtual board's collect loop carried flat out (measured): {verdict}")
        if self.line_bps is None:
            return f"link budget: {per}; the virtual board's pipe has no baud limit"
        verdict = "fits" if self.fits else f"does NOT fit (a stream may use {HEADROOM:.0%})"
        return (f"link budget: {per} = {self.use:.0%} of {self.baud} baud "
                f"({self.line_bps:,.0f} B/s at 8N1): {verdict}")


def budget(rate_hz: float, channels: int, baud: int | None, batch: int | None = None,
           measured_bps: float | None = None) -> Budget:
    return Budget(float(rate_hz), int(channels), baud, batch or default_batch(channels),
                  measured_bps)
