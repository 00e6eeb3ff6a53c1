/* px_list: an intrusive, circular, doubly-linked list. The node lives inside
 * the object (struct px_list_node link;), so linking and unlinking never
 * allocate and an object finds its own place in O(1). The list owns nothing:
 * freeing objects is the caller's business (unlink first).
 *
 * A node that is in no list has next == prev == NULL, which is also what a
 * zeroed (calloc'd) object holds, so px_list_remove() is safe on a node that
 * was never linked or was already removed. A list must be px_list_init()ed
 * before use (its head points at itself when empty). Not thread-safe. */
#ifndef PX_LIST_H
#define PX_LIST_H

#include <stddef.h>

struct px_list_node {
    struct px_list_node *next, *prev;
};

struct px_list {
    struct px_list_node head; /* sentinel: head.next is the first node */
};

/* The object that holds node ptr as its member `member`. */
#define px_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Iterates the nodes of list; the current node (pos) may be removed, even
 * freed, inside the loop, but not the one after it (tmp). */
#define px_list_for_each_safe(pos, tmp, list)                                                      \
    for ((pos) = (list)->head.next, (tmp) = (pos)->next; (pos) != &(list)->head;                   \
         (pos) = (tmp), (tmp) = (pos)->next)

static inline void px_list_init(struct px_list *l)
{
    l->head.next = l->head.prev = &l->head;
}

static inline void px_list_node_init(struct px_list_node *n)
{
    n->next = n->prev = NULL;
}

static inline int px_list_empty(const struct px_list *l)
{
    return l->head.next == &l->head;
}

/* 1 if n is in a list. */
static inline int px_list_linked(const struct px_list_node *n)
{
    return n->next != NULL;
}

static inline void px_list_insert_between(struct px_list_node *n, struct px_list_node *prev,
                                          struct px_list_node *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}

/* Links n (not in any list) first / last in l. */
static inline void px_list_insert_head(struct px_list *l, struct px_list_node *n)
{
    px_list_insert_between(n, &l->head, l->head.next);
}

static inline void px_list_insert_tail(struct px_list *l, struct px_list_node *n)
{
    px_list_insert_between(n, l->head.prev, &l->head);
}

/* Unlinks n from whatever list holds it; nothing if it is in none. */
static inline void px_list_remove(struct px_list_node *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

/* Takes every node of from into to, in their order, and leaves from empty:
 * a batch to work through while new nodes go to from. to is set up here
 * (any nodes it held are forgotten): give it a new list. */
static inline void px_list_move(struct px_list *to, struct px_list *from)
{
    px_list_init(to);
    if (px_list_empty(from))
        return;
    to->head.next = from->head.next;
    to->head.prev = from->head.prev;
    to->head.next->prev = &to->head;
    to->head.prev->next = &to->head;
    px_list_init(from);
}

/* The first / last node, or NULL if l is empty. */
static inline struct px_list_node *px_list_first(const struct px_list *l)
{
    return px_list_empty(l) ? NULL : l->head.next;
}

static inline struct px_list_node *px_list_last(const struct px_list *l)
{
    return px_list_empty(l) ? NULL : l->head.prev;
}

/* Number of nodes (walks the list). */
static inline size_t px_list_count(const struct px_list *l)
{
    size_t n = 0;
    for (const struct px_list_node *p = l->head.next; p != &l->head; p = p->next)
        n++;
    return n;
}

#endif
