using Escrow.Api.Admin;

namespace Escrow.Api.OperatorConsole;

/// <summary>The list of escrows (filtered, paged) and one escrow's page with the actions its status allows.</summary>
public static class EscrowPages
{
    public const int PageSize = 50;
    public const int AlertsScannedMax = 1_000;

    public static void MapEscrowPages(this RouteGroupBuilder pages)
    {
        pages.MapGet("/escrows", ListAsync);
        pages.MapGet("/escrows/{id}", ShowAsync);
        foreach (var kind in Enum.GetValues<OperatorActionKind>())
        {
            pages.MapPost($"/escrows/{{id}}/{AdminEndpoints.Segment(kind)}", (string id, HttpContext http, AdminOperations ops, IGrainFactory grains, IEscrowStore store, StripeDashboard stripe) =>
                    OperateAsync(id, kind, http, ops, grains, store, stripe))
                .WithMetadata(new AdminActionMetadata(AdminOperations.AuditAction(kind)));
        }
    }

    public static string Label(OperatorActionKind kind) => kind switch
    {
        OperatorActionKind.Release => "Release to the recipient",
        OperatorActionKind.Refund => "Refund the sender",
        OperatorActionKind.RetryTransfer => "Retry the transfer",
        OperatorActionKind.ApproveRefund => "Approve the refund",
        OperatorActionKind.ResolveDispute => "Resolve the dispute",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    private static async Task<IResult> ListAsync(HttpContext http, IEscrowStore store, TimeProvider clock, IOptions<MonitorOptions> monitor, string? status, string? stuck, string? recipient, string? from, string? to, string? after)
    {
        var errors = new List<string>();
        if (!string.IsNullOrEmpty(status) && !EscrowStatusNames.TryParseWire(status, out _))
        {
            errors.Add("The status is not one of the listed statuses.");
            status = null;
        }
        var fromDay = ParseDay(from, "from", errors);
        var toDay = ParseDay(to, "to", errors);
        recipient = string.IsNullOrWhiteSpace(recipient) ? null : recipient.Trim();
        var stuckOnly = stuck is "true" or "on";
        EscrowPage page;
        try
        {
            page = await store.QueryEscrowsAsync(new EscrowQuery(string.IsNullOrEmpty(status) ? null : status, recipient, stuckOnly, clock.GetUtcNow(), monitor.Value.Rules(), Limit: PageSize,
                After: string.IsNullOrEmpty(after) ? null : after, CreatedFrom: fromDay, CreatedBefore: toDay?.AddDays(1)));
        }
        catch (ArgumentException)
        {
            errors.Add("The page link is not valid any more; showing the first page.");
            page = await store.QueryEscrowsAsync(new EscrowQuery(status, recipient, stuckOnly, clock.GetUtcNow(), monitor.Value.Rules(), Limit: PageSize, CreatedFrom: fromDay, CreatedBefore: toDay?.AddDays(1)));
        }
        var statuses = Enum.GetValues<EscrowStatus>().Select(s => s.ToWire());
        var next = page.Next is null ? null : "/console/escrows" + Html.Query(("status", status), ("stuck", stuckOnly ? "true" : null), ("recipient", recipient), ("from", from), ("to", to), ("after", page.Next));
        var body = Html.Of($"""
            <h1>Escrows</h1>
            {errors.Select(e => Html.Of($"<p class=\"error\" role=\"alert\">{e}</p>"))}
            <form method="get" action="/console/escrows" class="filters">
              <label>Status <select name="status"><option value="">any</option>{statuses.Select(s => Html.Of($"<option{(s == status ? new Markup(" selected") : Markup.Empty)}>{s}</option>"))}</select></label>
              <label><input type="checkbox" name="stuck" value="true"{(stuckOnly ? new Markup(" checked") : Markup.Empty)}> Stuck only</label>
              <label>Recipient <input name="recipient" value="{recipient}" maxlength="64"></label>
              <label>Created from <input type="date" name="from" value="{from}"></label>
              <label>to <input type="date" name="to" value="{to}"></label>
              <button type="submit">Filter</button>
            </form>
            {(page.Items.Count == 0 ? Html.Of($"<p>No escrow matches.</p>") : Table(page.Items))}
            {Html.When(next is not null, Html.Of($"<p><a href=\"{next}\" rel=\"next\">Next page</a></p>"))}
            """);
        return ConsolePages.Page(http, "Escrows", body);
    }

    private static Markup Table(IReadOnlyList<EscrowProjection> items) => Html.Of($"""
        <table class="wide"><caption>Escrows, oldest first</caption>
        <thead><tr><th scope="col">Created</th><th scope="col">Escrow</th><th scope="col">Recipient</th><th scope="col">Status</th><th scope="col" class="num">Amount</th></tr></thead>
        <tbody>{items.Select(p => Html.Of($"<tr><td>{Html.Time(p.CreatedAt)}</td><td><a href=\"/console/escrows/{p.EscrowId}\">{p.EscrowId}</a></td><td>{p.RecipientId}</td><td><span class=\"status\">{p.Status}</span></td><td class=\"num\">{Html.Money(p.AmountMinor, p.Currency)}</td></tr>"))}</tbody>
        </table>
        """);

    private static DateTimeOffset? ParseDay(string? value, string name, List<string> errors)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }
        if (DateOnly.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
        {
            return new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        }
        errors.Add($"'{name}' must be a day (yyyy-MM-dd); it was left out.");
        return null;
    }

    private static async Task<IResult> ShowAsync(string id, HttpContext http, IGrainFactory grains, IEscrowStore store, StripeDashboard stripe, string? done) =>
        Guid.TryParse(id, out var escrowId) && await grains.GetGrain<IEscrowGrain>(escrowId).GetAsync() is { } view
            ? await RenderAsync(http, view, grains, store, stripe, Done(done), StatusCodes.Status200OK)
            : NotFound(http);

    /// <summary>Only a known action's name is shown back: the query string cannot put other words on the page.</summary>
    private static Markup? Done(string? segment) =>
        Enum.GetValues<OperatorActionKind>().Where(k => AdminEndpoints.Segment(k) == segment).Select(k => (Markup?)Html.Of($"<p class=\"notice\" role=\"status\">Done: {Label(k)}.</p>")).FirstOrDefault();

    private static IResult NotFound(HttpContext http) =>
        ConsolePages.Page(http, "No such escrow", Html.Of($"<h1>No such escrow</h1><p>No escrow has this id. <a href=\"/console/escrows\">All escrows</a></p>"), StatusCodes.Status404NotFound);

    private static async Task<IResult> OperateAsync(string id, OperatorActionKind kind, HttpContext http, AdminOperations ops, IGrainFactory grains, IEscrowStore store, StripeDashboard stripe)
    {
        if (!Guid.TryParse(id, out var escrowId) || await grains.GetGrain<IEscrowGrain>(escrowId).GetAsync() is not { } view)
        {
            return NotFound(http);
        }
        var form = await http.Request.ReadFormAsync();
        var reason = form["reason"].ToString().Trim();
        // The console asks a reason for every action, even those the API lets go without one: a click leaves a why.
        var reasonError = string.IsNullOrEmpty(reason) ? $"A reason (1 to {AdminOperations.ReasonLengthMax} characters) is required; it goes to the audit trail." : AdminOperations.ReasonError(kind, reason);
        if (reasonError is not null)
        {
            return await RenderAsync(http, view, grains, store, stripe, Html.Of($"<p class=\"error\" role=\"alert\">{Label(kind)}: {reasonError}</p>"), StatusCodes.Status400BadRequest);
        }
        if (form["confirm"] != "yes")
        {
            return ConsolePages.Confirm(http, Label(kind),
                Html.Of($"<p>Escrow <strong>{view.Id}</strong>: {view.Status}, {Html.Money(view.AmountMinor, view.Currency)} from {view.SenderEmail} to {view.RecipientId}.</p><p>Reason: <q>{reason}</q></p>"),
                $"/console/escrows/{view.Id}/{AdminEndpoints.Segment(kind)}", [("reason", reason)], $"/console/escrows/{view.Id}");
        }
        var result = await ops.OperateAsync(escrowId, kind, reason, http.KeyId());
        if (!result.Accepted)
        {
            var current = await grains.GetGrain<IEscrowGrain>(escrowId).GetAsync() ?? view;
            return await RenderAsync(http, current, grains, store, stripe,
                Html.Of($"<p class=\"error\" role=\"alert\">{Label(kind)} was refused: {result.Rejection!.Code} ({result.Rejection.Message})</p>"), StatusCodes.Status409Conflict);
        }
        return Results.Redirect($"/console/escrows/{escrowId}?done={AdminEndpoints.Segment(kind)}", permanent: false);
    }

    private static async Task<IResult> RenderAsync(HttpContext http, EscrowView v, IGrainFactory grains, IEscrowStore store, StripeDashboard stripe, Markup? message, int status)
    {
        var recipient = await grains.GetGrain<IRecipientGrain>(v.RecipientId).GetAsync();
        var ledger = await store.GetLedgerAsync(v.Id);
        var emails = await store.GetEmailLogAsync(v.Id);
        var inbound = await store.GetInboundMessagesAsync(v.Id);
        var alerts = (await store.ListAlertsAsync(openOnly: false, AlertsScannedMax)).Where(a => a.EscrowId == v.Id).ToList();
        var actions = await grains.GetGrain<IEscrowGrain>(v.Id).GetOperatorActionsAsync();
        var body = Html.Of($"""
            <h1>Escrow <span class="mono">{v.Id}</span></h1>
            {message ?? Markup.Empty}
            <p class="lead">Status <strong class="status" data-testid="status">{v.Status}</strong>{Html.When(v.NeedsOperator, Html.Of($" <span class=\"badge\">needs an operator</span>"))}{Html.When(v.DisputeOpen, Html.Of($" <span class=\"badge\">dispute open</span>"))}</p>
            <div class="columns">
            <section aria-labelledby="money"><h2 id="money">Amounts</h2>
            <dl>
              <dt>Amount</dt><dd>{Html.Money(v.AmountMinor, v.Currency)}</dd>
              <dt>Recipient's share</dt><dd>{Html.Money(v.RecipientShareMinor, v.Currency)}</dd>
              <dt>Platform fee</dt><dd>{Html.Money(v.PlatformFeeMinor, v.Currency)}</dd>
              <dt>Created</dt><dd>{Html.Time(v.CreatedAt)}</dd>
              <dt>Deadline</dt><dd>{Html.Time(v.ExpiresAt)} (replies until {Html.Time(v.ReplyDeadline)})</dd>
              {Html.When(v.TransferFailures > 0, Html.Of($"<dt>Transfer failures</dt><dd>{v.TransferFailures}, next attempt {Html.Time(v.NextTransferAttemptAt)}</dd>"))}
            </dl></section>
            <section aria-labelledby="parties"><h2 id="parties">Parties</h2>
            <dl>
              <dt>Sender</dt><dd>{v.SenderEmail}</dd>
              <dt>Recipient</dt><dd><a href="/console/escrows?recipient={v.RecipientId}">{v.RecipientId}</a>{(recipient is null ? Markup.Empty : Html.Of($": {recipient.DisplayName} &lt;{recipient.Email}&gt;{(recipient.PayoutsEnabled ? "" : ", payouts not set up")}"))}</dd>
            </dl></section>
            <section aria-labelledby="stripe"><h2 id="stripe">Stripe</h2>
            <dl>
              <dt>PaymentIntent</dt><dd>{StripeLink(stripe, "payments", v.PaymentIntentId)}</dd>
              <dt>Charge</dt><dd>{StripeLink(stripe, "payments", v.ChargeId)}</dd>
              <dt>Transfer</dt><dd>{StripeLink(stripe, "connect/transfers", v.TransferId)}</dd>
            </dl></section>
            </div>
            <section aria-labelledby="actions"><h2 id="actions">Actions</h2>
            {(actions.Length == 0 ? Html.Of($"<p>Its status allows no operator action.</p>") : Html.Join(actions.Select(k => ActionForm(http, v.Id, k))))}
            </section>
            <section aria-labelledby="timeline"><h2 id="timeline">Timeline</h2>
            <ol class="timeline" data-testid="timeline">{v.History.Select(h => Html.Of($"<li><time>{Html.Time(h.At)}</time> <strong>{h.Event}</strong> → {h.Status}{(h.AmountMinor is { } a ? Html.Of($", {Html.Money(a, v.Currency)}") : Markup.Empty)}{(h.Detail is null ? Markup.Empty : Html.Of($": {h.Detail}"))}</li>"))}</ol>
            </section>
            <section aria-labelledby="ledger"><h2 id="ledger">Ledger</h2>
            <table><thead><tr><th scope="col">#</th><th scope="col">At</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col" class="num">Amount</th><th scope="col">Data</th></tr></thead>
            <tbody>{ledger.Select(e => Html.Of($"<tr><td>{e.Seq}</td><td>{Html.Time(e.At)}</td><td>{e.Kind}</td><td>{e.Status}</td><td class=\"num\">{(e.AmountMinor is { } a ? Html.Money(a, e.Currency!) : "")}</td><td class=\"mono\">{e.Data}</td></tr>"))}</tbody></table>
            </section>
            <section aria-labelledby="mail"><h2 id="mail">E-mails sent</h2>
            {(emails.Count == 0 ? Html.Of($"<p>None.</p>") : Html.Of($"<table><thead><tr><th scope=\"col\">At</th><th scope=\"col\">Kind</th><th scope=\"col\">To</th><th scope=\"col\">Subject</th><th scope=\"col\">Outcome</th></tr></thead><tbody>{emails.Select(m => Html.Of($"<tr><td>{Html.Time(m.At)}</td><td>{m.Kind}</td><td>{m.To}</td><td>{m.Subject}</td><td>{m.Outcome}{(m.Error is null ? "" : ": " + m.Error)}</td></tr>"))}</tbody></table>"))}
            <h2>Inbound messages</h2>
            {(inbound.Count == 0 ? Html.Of($"<p>None.</p>") : Html.Of($"<table><thead><tr><th scope=\"col\">Received</th><th scope=\"col\">From</th><th scope=\"col\">Subject</th><th scope=\"col\">In time</th><th scope=\"col\">Ignored</th></tr></thead><tbody>{inbound.Select(m => Html.Of($"<tr><td>{Html.Time(m.ReceivedAt)}</td><td>{m.From}</td><td>{m.Subject}</td><td>{(m.WithinDeadline ? (m.GraceUsed ? "yes, in the grace period" : "yes") : "no")}</td><td>{m.IgnoredReason}</td></tr>"))}</tbody></table>"))}
            </section>
            <section aria-labelledby="escrow-alerts"><h2 id="escrow-alerts">Alerts</h2>
            {(alerts.Count == 0 ? Html.Of($"<p>None.</p>") : AlertsPage.Table(http, alerts))}
            </section>
            <p><a href="/console/audit?escrow={v.Id}">Audit log of this escrow</a></p>
            """);
        return ConsolePages.Page(http, $"Escrow {v.Id}", body, status);
    }

    private static Markup ActionForm(HttpContext http, Guid escrowId, OperatorActionKind kind)
    {
        var segment = AdminEndpoints.Segment(kind);
        return Html.Of($"""
            <form method="post" action="/console/escrows/{escrowId}/{segment}" class="action">
              {ConsolePages.Token(http)}
              <label for="reason-{segment}">Reason</label>
              <input id="reason-{segment}" name="reason" required maxlength="{AdminOperations.ReasonLengthMax}">
              <button type="submit" data-action="{segment}">{Label(kind)}…</button>
            </form>
            """);
    }

    private static Markup StripeLink(StripeDashboard stripe, string section, string? id) =>
        id is null ? Html.Of($"–")
        : stripe.Base is { } root ? Html.Of($"<a class=\"mono\" href=\"{root}{section}/{id}\" rel=\"noreferrer\">{id}</a>")
        : Html.Of($"<span class=\"mono\">{id}</span>");
}

/// <summary>
/// Where the Stripe dashboard shows an object: its live pages for a live key, its test pages for a test key, and
/// nowhere for the sandbox (which has no dashboard).
/// </summary>
public sealed class StripeDashboard(IOptions<StripeOptions> stripe, IExternalEndpoints endpoints)
{
    public string? Base
    {
        get
        {
            var key = stripe.Value.SecretKey ?? "";
            if (endpoints.StripeApiBase is not null)
            {
                return null;
            }
            return key.StartsWith("sk_live_", StringComparison.Ordinal) || key.StartsWith("rk_live_", StringComparison.Ordinal) ? "https://dashboard.stripe.com/"
                : key.StartsWith("sk_test_", StringComparison.Ordinal) || key.StartsWith("rk_test_", StringComparison.Ordinal) ? "https://dashboard.stripe.com/test/"
                : null;
        }
    }
}
