//! A connected client's state as the server sees it: selected db, protocol, name, auth, the
//! reply buffer, and what CLIENT LIST reports. The driver owns the socket; this owns the rest.

use bytes::Bytes;

use crate::protocol::ReplyBuf;

#[derive(Debug)]
pub struct Client {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub name: Option<Bytes>,
    pub db: usize,
    pub authenticated: bool,
    pub out: ReplyBuf,
    pub created_ms: u64,
    pub last_interaction_ms: u64,
    /// Full name of the last command run ("client|list").
    pub last_cmd: &'static str,
    pub close_after_reply: bool,
    pub close_asap: bool,
    /// CLIENT NO-EVICT on.
    pub no_evict: bool,
    /// Bytes waiting in the query buffer (set by the driver; CLIENT LIST `qbuf`).
    pub qbuf: usize,
    pub tot_net_in: u64,
    pub tot_net_out: u64,
    pub tot_cmds: u64,
}

impl Client {
    pub fn new(id: u64, addr: String, laddr: String, now_ms: u64, authenticated: bool) -> Self {
        Client {
            id,
            addr,
            laddr,
            name: None,
            db: 0,
            authenticated,
            out: ReplyBuf::new(2),
            created_ms: now_ms,
            last_interaction_ms: now_ms,
            last_cmd: "NULL",
            close_after_reply: false,
            close_asap: false,
            no_evict: false,
            qbuf: 0,
            tot_net_in: 0,
            tot_net_out: 0,
            tot_cmds: 0,
        }
    }

    pub fn resp(&self) -> u8 {
        self.out.resp
    }

    fn flags(&self) -> String {
        let mut f = String::new();
        if self.close_asap {
            f.push('A');
        }
        if self.close_after_reply {
            f.push('c');
        }
        if self.no_evict {
            f.push('e');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }

    /// One line of CLIENT LIST / CLIENT INFO, fields as Redis 7.0 prints them.
    pub fn info_line(&self, now_ms: u64) -> String {
        let name = self.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        let age = now_ms.saturating_sub(self.created_ms) / 1000;
        let idle = now_ms.saturating_sub(self.last_interaction_ms) / 1000;
        let obl = self.out.len();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi=-1 \
             qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=16384 obl={} oll=0 omem=0 tot-mem={} \
             events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.id + 7,
            name,
            age,
            idle,
            self.flags(),
            self.db,
            self.qbuf,
            16384usize.saturating_sub(self.qbuf),
            obl,
            16384 + 16384 + obl + self.qbuf,
            self.last_cmd,
            self.resp()
        )
    }
}
