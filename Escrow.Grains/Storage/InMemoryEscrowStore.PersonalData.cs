namespace Escrow.Grains.Storage;

public sealed partial class InMemoryEscrowStore : IPersonalDataStore
{
    public Task<IReadOnlyList<EscrowProjection>> FindEscrowsBySenderAsync(string senderKey, int limit, CancellationToken cancellationToken = default) =>
        FindProjections(p => p.SenderKey == senderKey, p => p.CreatedAt, limit);

    public Task<IReadOnlyList<EscrowProjection>> FindEscrowsOfRecipientAsync(string recipientId, int limit, CancellationToken cancellationToken = default) =>
        FindProjections(p => p.RecipientId == recipientId, p => p.CreatedAt, limit);

    public Task<IReadOnlyList<EscrowProjection>> FindEscrowsToRetireAsync(DateTimeOffset before, int limit, CancellationToken cancellationToken = default) =>
        FindProjections(p => !p.BodiesErased && EscrowStatusNames.TryParseWire(p.Status, out var s) && s.IsTerminal() && p.StatusChangedAt < before, p => p.StatusChangedAt, limit);

    private Task<IReadOnlyList<EscrowProjection>> FindProjections(Func<EscrowProjection, bool> where, Func<EscrowProjection, DateTimeOffset> order, int limit)
    {
        lock (_lock)
        {
            IReadOnlyList<EscrowProjection> rows = [.. _projections.Values.Where(where).OrderBy(order).Take(Math.Clamp(limit, 1, 100_000))];
            return Task.FromResult(rows);
        }
    }

    public Task<ErasedRows> ErasePersonalDataAsync(PersonalDataErasure erasure, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(erasure);
        var ids = erasure.EscrowIds.ToHashSet();
        var email = erasure.Email;
        bool Mentions(string? text) => !string.IsNullOrEmpty(email) && text is not null && text.Contains(email, StringComparison.OrdinalIgnoreCase);
        bool IsTo(string address) => !string.IsNullOrEmpty(email) && string.Equals(address, email, StringComparison.OrdinalIgnoreCase);
        const string Erased = PersonalData.Erased;
        int emails = 0, inbound = 0, alerts = 0, audit = 0;
        lock (_lock)
        {
            for (var i = 0; i < _emails.Count; i++)
            {
                var (id, e) = _emails[i];
                var isSender = e.EscrowId is { } of && erasure.Senders?.GetValueOrDefault(of) is { } sender && string.Equals(sender, e.To, StringComparison.OrdinalIgnoreCase);
                var next = e with
                {
                    To = IsTo(e.To) || isSender ? Erased : e.To,
                    Subject = IsTo(e.To) || (e.EscrowId is { } escrow && ids.Contains(escrow)) ? Erased : e.Subject,
                    Error = PersonalData.Without(e.Error, email),
                };
                if (next != e)
                {
                    _emails[i] = (id, next);
                    emails++;
                }
            }
            foreach (var (key, m) in _inbound.ToList())
            {
                var whole = IsTo(m.From) || Mentions(m.Preview) || Mentions(m.Subject);
                var next = m with
                {
                    From = whole ? Erased : m.From,
                    Subject = whole || (m.EscrowId is { } escrow && ids.Contains(escrow)) ? Erased : m.Subject,
                    Preview = whole || (m.EscrowId is { } e2 && ids.Contains(e2)) ? Erased : m.Preview,
                };
                if (next != m)
                {
                    _inbound[key] = next;
                    inbound++;
                }
            }
            foreach (var (key, a) in _alerts.ToList().Where(a => Mentions(a.Value.Details)))
            {
                _alerts[key] = a with { Details = PersonalData.Without(a.Details, email)! };
                alerts++;
            }
            for (var i = 0; i < _audit.Count; i++)
            {
                if (Mentions(_audit[i].Reason) || Mentions(_audit[i].Details))
                {
                    _audit[i] = _audit[i] with { Reason = PersonalData.Without(_audit[i].Reason, email), Details = PersonalData.Without(_audit[i].Details, email) };
                    audit++;
                }
            }
        }
        return Task.FromResult(new ErasedRows(emails, inbound, alerts, audit));
    }
}
