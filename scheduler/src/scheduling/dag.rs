//! The parent → child graph of one task's peers.
//!
//! Pieces flow from parent to child. A cycle would let peers wait on each other for pieces none
//! of them has, so every edge is checked before it is added and the graph stays acyclic by
//! construction. The graph is plain data: the task that owns it serialises access.

use std::collections::{HashMap, HashSet};

use common::ids::PeerId;

/// Why an edge was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    /// A peer cannot download from itself.
    #[error("peer {0} cannot be its own parent")]
    SelfLoop(PeerId),
    /// The peer has not been added as a vertex (or was removed).
    #[error("peer {0} is not in the task's graph")]
    UnknownVertex(PeerId),
    /// `child` already reaches `parent`, so the edge would close a cycle.
    #[error("edge {parent} -> {child} would create a cycle")]
    Cycle { parent: PeerId, child: PeerId },
}

/// A peer's edges.
#[derive(Debug, Clone, Default)]
struct Vertex {
    parents: HashSet<PeerId>,
    children: HashSet<PeerId>,
}

/// A directed acyclic graph of the peers of one task, edges pointing from parent to child.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    vertices: HashMap<PeerId, Vertex>,
}

impl Dag {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `peer` with no edges. Returns `false` (and keeps its edges) if it was already there.
    pub fn add_vertex(&mut self, peer: PeerId) -> bool {
        match self.vertices.entry(peer) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Vertex::default());
                true
            }
        }
    }

    /// Removes `peer` and every edge to or from it. Returns `false` if it was not there.
    pub fn remove_vertex(&mut self, peer: &PeerId) -> bool {
        let Some(vertex) = self.vertices.remove(peer) else {
            return false;
        };
        for parent in &vertex.parents {
            if let Some(v) = self.vertices.get_mut(parent) {
                v.children.remove(peer);
            }
        }
        for child in &vertex.children {
            if let Some(v) = self.vertices.get_mut(child) {
                v.parents.remove(peer);
            }
        }
        true
    }

    /// Whether `peer` is a vertex.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.vertices.contains_key(peer)
    }

    /// Number of vertices.
    pub fn len(&self) -> usize {
        self.vertices.len()
    }

    /// Whether the graph has no vertices.
    pub fn is_empty(&self) -> bool {
        self.vertices.is_empty()
    }

    /// Adds the edge `parent -> child`. Adding an existing edge is a no-op.
    pub fn add_edge(&mut self, parent: &PeerId, child: &PeerId) -> Result<(), DagError> {
        self.check_edge(parent, child)?;
        if let Some(v) = self.vertices.get_mut(parent) {
            v.children.insert(child.clone());
        }
        if let Some(v) = self.vertices.get_mut(child) {
            v.parents.insert(parent.clone());
        }
        Ok(())
    }

    /// Removes the edge `parent -> child`. Returns `false` if there was none.
    pub fn remove_edge(&mut self, parent: &PeerId, child: &PeerId) -> bool {
        let removed = self.vertices.get_mut(parent).is_some_and(|v| v.children.remove(child));
        if let Some(v) = self.vertices.get_mut(child) {
            v.parents.remove(parent);
        }
        removed
    }

    /// Whether [`Dag::add_edge`] would accept `parent -> child`.
    pub fn can_add_edge(&self, parent: &PeerId, child: &PeerId) -> bool {
        self.check_edge(parent, child).is_ok()
    }

    /// The parents of `child`, in no particular order (none if it is unknown).
    pub fn parents(&self, child: &PeerId) -> impl Iterator<Item = &PeerId> + '_ {
        self.vertices.get(child).into_iter().flat_map(|v| v.parents.iter())
    }

    /// The children of `parent`, in no particular order (none if it is unknown).
    pub fn children(&self, parent: &PeerId) -> impl Iterator<Item = &PeerId> + '_ {
        self.vertices.get(parent).into_iter().flat_map(|v| v.children.iter())
    }

    fn check_edge(&self, parent: &PeerId, child: &PeerId) -> Result<(), DagError> {
        if parent == child {
            return Err(DagError::SelfLoop(parent.clone()));
        }
        for peer in [parent, child] {
            if !self.contains(peer) {
                return Err(DagError::UnknownVertex(peer.clone()));
            }
        }
        if self.reaches(child, parent) {
            return Err(DagError::Cycle { parent: parent.clone(), child: child.clone() });
        }
        Ok(())
    }

    /// `from` and every peer reachable from it along child edges; `None` if `from` is not a
    /// vertex. An edge `p -> from` would close a cycle exactly when `p` is in it.
    pub fn descendants(&self, from: &PeerId) -> Option<HashSet<&PeerId>> {
        let (start, _) = self.vertices.get_key_value(from)?;
        let mut seen = HashSet::from([start]);
        let mut stack = vec![start];
        while let Some(peer) = stack.pop() {
            for child in self.children(peer) {
                if seen.insert(child) {
                    stack.push(child);
                }
            }
        }
        Some(seen)
    }

    /// Whether `to` can be reached from `from` following child edges (depth-first).
    fn reaches(&self, from: &PeerId, to: &PeerId) -> bool {
        let mut stack = vec![from];
        let mut seen = HashSet::new();
        while let Some(peer) = stack.pop() {
            if peer == to {
                return true;
            }
            if seen.insert(peer) {
                stack.extend(self.children(peer));
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str) -> PeerId {
        PeerId(id.to_owned())
    }

    fn dag(peers: &[&str]) -> Dag {
        let mut dag = Dag::new();
        for peer in peers {
            assert!(dag.add_vertex(p(peer)));
        }
        dag
    }

    fn sorted<'a>(it: impl Iterator<Item = &'a PeerId>) -> Vec<&'a str> {
        let mut v: Vec<_> = it.map(|p| p.0.as_str()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn edges_are_visible_from_both_ends() {
        let mut g = dag(&["a", "b", "c"]);
        g.add_edge(&p("a"), &p("c")).unwrap();
        g.add_edge(&p("b"), &p("c")).unwrap();
        assert_eq!(sorted(g.parents(&p("c"))), ["a", "b"]);
        assert_eq!(sorted(g.children(&p("a"))), ["c"]);
        assert_eq!(sorted(g.parents(&p("a"))), Vec::<&str>::new());
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn self_loops_are_refused() {
        let mut g = dag(&["a"]);
        assert!(!g.can_add_edge(&p("a"), &p("a")));
        assert_eq!(g.add_edge(&p("a"), &p("a")), Err(DagError::SelfLoop(p("a"))));
    }

    #[test]
    fn unknown_vertices_are_refused() {
        let mut g = dag(&["a"]);
        assert_eq!(g.add_edge(&p("a"), &p("x")), Err(DagError::UnknownVertex(p("x"))));
        assert_eq!(g.add_edge(&p("x"), &p("a")), Err(DagError::UnknownVertex(p("x"))));
        assert!(!g.can_add_edge(&p("x"), &p("a")));
        assert_eq!(sorted(g.children(&p("a"))), Vec::<&str>::new());
    }

    #[test]
    fn direct_and_transitive_cycles_are_refused() {
        let mut g = dag(&["a", "b", "c", "d"]);
        g.add_edge(&p("a"), &p("b")).unwrap();
        g.add_edge(&p("b"), &p("c")).unwrap();
        g.add_edge(&p("c"), &p("d")).unwrap();
        for (parent, child) in [("b", "a"), ("c", "a"), ("d", "a"), ("d", "b")] {
            assert!(!g.can_add_edge(&p(parent), &p(child)), "{parent}->{child}");
            assert_eq!(g.add_edge(&p(parent), &p(child)), Err(DagError::Cycle { parent: p(parent), child: p(child) }));
        }
        // Shortcuts along the existing direction are fine.
        assert!(g.can_add_edge(&p("a"), &p("d")));
        g.add_edge(&p("a"), &p("d")).unwrap();
        // A refused edge left nothing behind.
        assert_eq!(sorted(g.children(&p("d"))), Vec::<&str>::new());
    }

    #[test]
    fn diamond_is_not_a_cycle() {
        let mut g = dag(&["a", "b", "c", "d"]);
        for (parent, child) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")] {
            g.add_edge(&p(parent), &p(child)).unwrap();
        }
        assert!(g.can_add_edge(&p("b"), &p("c")));
        assert!(!g.can_add_edge(&p("d"), &p("a")));
    }

    #[test]
    fn adding_an_edge_twice_is_a_no_op() {
        let mut g = dag(&["a", "b"]);
        g.add_edge(&p("a"), &p("b")).unwrap();
        g.add_edge(&p("a"), &p("b")).unwrap();
        assert_eq!(sorted(g.parents(&p("b"))), ["a"]);
    }

    #[test]
    fn removing_an_edge_reopens_the_reverse_direction() {
        let mut g = dag(&["a", "b"]);
        g.add_edge(&p("a"), &p("b")).unwrap();
        assert!(!g.can_add_edge(&p("b"), &p("a")));
        assert!(g.remove_edge(&p("a"), &p("b")));
        assert!(!g.remove_edge(&p("a"), &p("b")));
        assert_eq!(sorted(g.parents(&p("b"))), Vec::<&str>::new());
        g.add_edge(&p("b"), &p("a")).unwrap();
    }

    #[test]
    fn removing_a_vertex_removes_its_edges() {
        let mut g = dag(&["a", "b", "c"]);
        g.add_edge(&p("a"), &p("b")).unwrap();
        g.add_edge(&p("b"), &p("c")).unwrap();
        assert!(g.remove_vertex(&p("b")));
        assert!(!g.remove_vertex(&p("b")));
        assert!(!g.contains(&p("b")));
        assert_eq!(sorted(g.children(&p("a"))), Vec::<&str>::new());
        assert_eq!(sorted(g.parents(&p("c"))), Vec::<&str>::new());
        // c no longer reaches a, so c -> a is allowed.
        g.add_edge(&p("c"), &p("a")).unwrap();
        // Re-adding b starts it bare.
        assert!(g.add_vertex(p("b")));
        assert_eq!(sorted(g.parents(&p("b"))), Vec::<&str>::new());
    }

    #[test]
    fn re_adding_a_vertex_keeps_its_edges() {
        let mut g = dag(&["a", "b"]);
        g.add_edge(&p("a"), &p("b")).unwrap();
        assert!(!g.add_vertex(p("b")));
        assert_eq!(sorted(g.parents(&p("b"))), ["a"]);
    }

    #[test]
    fn descendants_refuse_exactly_the_edges_can_add_edge_refuses() {
        let names: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
        let mut g = Dag::new();
        for n in &names {
            g.add_vertex(p(n));
        }
        // A pseudo-random graph: every pair tried once, in a scrambled order.
        let mut x = 7u32;
        for _ in 0..60 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let (a, b) = ((x >> 8) as usize % names.len(), (x >> 20) as usize % names.len());
            let _ = g.add_edge(&p(&names[a]), &p(&names[b]));
        }
        let stranger = p("stranger");
        for child in names.iter().map(|n| p(n)).chain([stranger.clone()]) {
            let below = g.descendants(&child);
            assert_eq!(below.is_none(), child == stranger);
            for parent in names.iter().map(|n| p(n)).chain([stranger.clone()]) {
                let by_set = below.as_ref().is_some_and(|b| g.contains(&parent) && !b.contains(&parent));
                assert_eq!(by_set, g.can_add_edge(&parent, &child), "{parent} -> {child}");
            }
        }
    }
}
