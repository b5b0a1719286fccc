namespace Escrow.Api.OperatorConsole;

/// <summary>The operators' audit trail, newest first, filtered by escrow, by recipient (their escrows) and by key id.</summary>
public static class AuditPage
{
    public const int ReadMax = 1_000;
    public const int ShownMax = 200;

    public static void MapAuditPage(this RouteGroupBuilder pages) => pages.MapGet("/audit", async (HttpContext http, IEscrowStore store, string? escrow, string? recipient, string? key) =>
    {
        var errors = new List<Markup>();
        Guid? escrowId = null;
        if (!string.IsNullOrWhiteSpace(escrow))
        {
            if (Guid.TryParse(escrow.Trim(), out var parsed))
            {
                escrowId = parsed;
            }
            else
            {
                errors.Add(Html.Of($"<p class=\"error\" role=\"alert\">The escrow must be an escrow id; that filter was left out.</p>"));
            }
        }
        recipient = string.IsNullOrWhiteSpace(recipient) ? null : recipient.Trim();
        key = string.IsNullOrWhiteSpace(key) ? null : key.Trim();
        var rows = await store.GetAuditAsync(escrowId, ReadMax);
        if (recipient is not null)
        {
            var ids = await RecipientEscrowsAsync(store, recipient, rows.Where(r => r.EscrowId is not null).Select(r => r.EscrowId!.Value).Distinct().ToList());
            rows = [.. rows.Where(r => r.EscrowId is { } id && ids.Contains(id))];
        }
        if (key is not null)
        {
            rows = [.. rows.Where(r => r.KeyId == key)];
        }
        var shown = rows.Take(ShownMax).ToList();
        var body = Html.Of($"""
            <h1>Audit log</h1>
            {errors}
            <form method="get" action="/console/audit" class="filters">
              <label>Escrow <input name="escrow" value="{escrow}" maxlength="36"></label>
              <label>Recipient <input name="recipient" value="{recipient}" maxlength="64"></label>
              <label>Key id <input name="key" value="{key}" maxlength="64"></label>
              <button type="submit">Filter</button>
            </form>
            {(shown.Count == 0 ? Html.Of($"<p>No audit row matches.</p>") : Html.Of($"""
                <table class="wide"><caption>Newest first{(rows.Count > ShownMax ? $", the first {ShownMax}" : "")}</caption>
                <thead><tr><th scope="col">At</th><th scope="col">Key</th><th scope="col">Action</th><th scope="col">Escrow</th><th scope="col">Reason</th><th scope="col">Outcome</th></tr></thead>
                <tbody>{shown.Select(r => Html.Of($"<tr><td>{Html.Time(r.At)}</td><td class=\"mono\">{r.KeyId}</td><td>{r.Action}</td><td>{(r.EscrowId is { } e ? Html.Of($"<a href=\"/console/escrows/{e}\">{e}</a>") : Markup.Empty)}</td><td>{r.Reason}</td><td>{r.Details}</td></tr>"))}</tbody></table>
                """))}
            """);
        return ConsolePages.Page(http, "Audit log", body);
    });

    /// <summary>Which of these escrows belong to the recipient (read from the projection, one escrow at a time: the audit rows are few).</summary>
    private static async Task<HashSet<Guid>> RecipientEscrowsAsync(IEscrowStore store, string recipient, IReadOnlyList<Guid> candidates)
    {
        var ids = new HashSet<Guid>();
        foreach (var id in candidates)
        {
            if ((await store.GetEscrowAsync(id))?.RecipientId == recipient)
            {
                ids.Add(id);
            }
        }
        return ids;
    }
}
