//! What slot a server announces for a new connection.

/// What slot a server announces for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotPolicy {
    /// The lowest free slot (the protocol as written).
    Lowest,
    /// The lowest free slot divided by the server's speed: a server half as
    /// fast announces twice the slot, as if it held twice its connections.
    /// Only the number changes; the server still allocates the lowest free.
    Weighted,
    /// The lowest free slot times `1 + outstanding / workers` at the moment
    /// of the handshake: a server with a queue announces a higher slot, with
    /// no configured weight.
    LoadAware,
}

impl SlotPolicy {
    /// The slot announced for the allocated `slot` of a server of `speed`
    /// with `outstanding` requests (queued or in service) and `workers`.
    pub fn announce(self, slot: u32, speed: f64, outstanding: f64, workers: u32) -> u64 {
        match self {
            SlotPolicy::Lowest => slot as u64,
            SlotPolicy::Weighted => (slot as f64 / speed).floor() as u64,
            SlotPolicy::LoadAware => {
                (slot as f64 * (1.0 + outstanding / workers.max(1) as f64)).floor() as u64
            }
        }
    }
}
