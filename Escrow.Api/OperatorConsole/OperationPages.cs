using Escrow.Api.Admin;

namespace Escrow.Api.OperatorConsole;

public static class OperationPages
{
    public static void MapOperationPages(this RouteGroupBuilder pages)
    {
        AlertsPage.Map(pages);
        BreakerPage.Map(pages);
        ReconciliationPage.Map(pages);
        PrivacyPage.Map(pages);
    }
}

/// <summary>Erasing a person's data on request: the same operation as POST /v1/admin/privacy/erase.</summary>
public static class PrivacyPage
{
    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/privacy", (HttpContext http) => Render(http, null, StatusCodes.Status200OK));
        pages.MapPost("/privacy/erase", async (HttpContext http, AdminOperations ops) =>
        {
            var form = await http.Request.ReadFormAsync();
            var email = form["email"].ToString().Trim();
            if (!Escrow.Api.Endpoints.RecipientEndpoints.IsValidEmail(email))
            {
                return Render(http, Html.Of($"<p class=\"error\" role=\"alert\">A valid e-mail address is required.</p>"), StatusCodes.Status400BadRequest);
            }
            if (form["confirm"] != "yes")
            {
                return ConsolePages.Confirm(http, "Erase a person's data",
                    Html.Of($"<p>Everything stored about <strong>{email}</strong> becomes <q>erased</q>. This cannot be undone.</p>"), "/console/privacy/erase", [("email", email)], "/console/privacy");
            }
            var outcome = await ops.EraseAsync(email, http.KeyId());
            return outcome.Refused
                ? Render(http, Html.Of($"<p class=\"error\" role=\"alert\">{outcome.Open.Count} of this person's escrows are not finished; nothing was erased.</p>"), StatusCodes.Status409Conflict)
                : Render(http, Html.Of($"<p class=\"notice\" role=\"status\">Erased: {outcome.Erased.Count} escrows; {outcome.Rows}.</p>"), StatusCodes.Status200OK);
        }).WithMetadata(new AdminActionMetadata(AdminOperations.ErasePersonalData));
    }

    private static IResult Render(HttpContext http, Markup? message, int status) => ConsolePages.Page(http, "Personal data", Html.Of($"""
        <h1>Personal data</h1>
        {message ?? Markup.Empty}
        <p>Erasing replaces a person's e-mail address, and the subjects and messages of their escrows, with <q>erased</q> everywhere; ids and amounts stay. It is refused while one of their escrows is not finished.</p>
        <form method="post" action="/console/privacy/erase" class="action">
          {ConsolePages.Token(http)}
          <label for="erase-email">E-mail address</label>
          <input id="erase-email" name="email" type="email" required maxlength="254">
          <button type="submit">Erase…</button>
        </form>
        """), status);
}

/// <summary>Alerts: filter by open or all and by severity or kind; acknowledge one.</summary>
public static class AlertsPage
{
    public const int ListedMax = 500;

    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/alerts", async (HttpContext http, IEscrowStore store, string? show, string? severity, string? kind, long? done) =>
        {
            var openOnly = show != "all";
            var alerts = (await store.ListAlertsAsync(openOnly, ListedMax))
                .Where(a => string.IsNullOrEmpty(severity) || a.Severity == severity)
                .Where(a => string.IsNullOrEmpty(kind) || a.Kind.Contains(kind, StringComparison.OrdinalIgnoreCase))
                .ToList();
            var body = Html.Of($"""
                <h1>Alerts</h1>
                {Html.When(done is not null, Html.Of($"<p class=\"notice\" role=\"status\">Alert {done} acknowledged.</p>"))}
                <form method="get" action="/console/alerts" class="filters">
                  <label>Show <select name="show"><option value="open">unacknowledged</option><option value="all"{(openOnly ? Markup.Empty : new Markup(" selected"))}>all</option></select></label>
                  <label>Severity <input name="severity" value="{severity}" maxlength="32"></label>
                  <label>Kind contains <input name="kind" value="{kind}" maxlength="64"></label>
                  <button type="submit">Filter</button>
                </form>
                {(alerts.Count == 0 ? Html.Of($"<p>No alert matches.</p>") : Table(http, alerts))}
                """);
            return ConsolePages.Page(http, "Alerts", body);
        });
        pages.MapPost("/alerts/{id:long}/ack", async (long id, HttpContext http, AdminOperations ops) =>
                await ops.AcknowledgeAlertAsync(id, http.KeyId())
                    ? Results.Redirect("/console/alerts" + Html.Query(("done", id.ToString(CultureInfo.InvariantCulture))), permanent: false)
                    : ConsolePages.Page(http, "No such alert", Html.Of($"<h1>No such alert</h1><p><a href=\"/console/alerts\">Alerts</a></p>"), StatusCodes.Status404NotFound))
            .WithMetadata(new AdminActionMetadata(AdminOperations.AcknowledgeAlert));
    }

    public static Markup Table(HttpContext http, IReadOnlyList<AlertRecord> alerts) => Html.Of($"""
        <table class="wide"><thead><tr><th scope="col">Raised</th><th scope="col">Severity</th><th scope="col">Kind</th><th scope="col">Escrow</th><th scope="col">Details</th><th scope="col">Acknowledged</th></tr></thead>
        <tbody>{alerts.Select(a => Html.Of($"""
            <tr data-alert="{a.Id}"><td>{Html.Time(a.CreatedAt)}</td><td><span class="severity {a.Severity}">{a.Severity}</span></td><td>{a.Kind}</td>
            <td>{(a.EscrowId is { } e ? Html.Of($"<a href=\"/console/escrows/{e}\">{e}</a>") : Markup.Empty)}</td><td>{a.Details}</td>
            <td>{(a.AcknowledgedAt is null
                ? Html.Of($"<form method=\"post\" action=\"/console/alerts/{a.Id}/ack\">{ConsolePages.Token(http)}<button type=\"submit\">Acknowledge</button></form>")
                : Html.Of($"{Html.Time(a.AcknowledgedAt)} by {a.AcknowledgedBy}"))}</td></tr>
            """))}</tbody></table>
        """);
}

/// <summary>The circuit breaker: its window's use against the caps, and a reset that needs a reason and a confirmation.</summary>
public static class BreakerPage
{
    public static Markup Summary(CircuitBreakerView b) => Html.Of($"""
        <dl class="breaker">
          <dt>State</dt><dd><strong class="breaker-state {b.State}" data-testid="breaker-state">{b.State}</strong> ({b.Trips} trips so far)</dd>
          <dt>Refunds in the window</dt><dd><meter min="0" max="{b.RefundsPerWindowMax}" value="{b.RefundsInWindow}"></meter> {b.RefundsInWindow} of {b.RefundsPerWindowMax}</dd>
          {b.Currencies.Select(c => Html.Of($"""
          <dt>{c.Currency} refunded in the window</dt><dd data-currency="{c.Currency}"><meter min="0" max="{c.RefundAmountPerWindowMaxMinor}" value="{c.RefundAmountInWindowMinor}"></meter> {c.RefundAmountInWindowMinor} of {c.RefundAmountPerWindowMaxMinor} (minor units){(c.State == "open" ? Html.Of($" <strong class=\"breaker-state open\">open</strong>") : Markup.Empty)}</dd>
          """))}
          <dt>Window</dt><dd>{(int)b.Window.TotalMinutes} minutes{(b.WindowStartedAt is { } s ? $", started {Html.Time(s)}" : "")}</dd>
        </dl>
        """);

    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/breaker", async (HttpContext http, IGrainFactory grains, string? done) =>
            Render(http, await grains.GetGrain<ICircuitBreakerGrain>(0).GetAsync(), done is null ? null : Html.Of($"<p class=\"notice\" role=\"status\">The breaker was reset.</p>"), StatusCodes.Status200OK));
        pages.MapPost("/breaker/reset", async (HttpContext http, IGrainFactory grains, AdminOperations ops) =>
        {
            var form = await http.Request.ReadFormAsync();
            var reason = form["reason"].ToString().Trim();
            if (reason.Length is 0 or > AdminOperations.ReasonLengthMax)
            {
                return Render(http, await grains.GetGrain<ICircuitBreakerGrain>(0).GetAsync(),
                    Html.Of($"<p class=\"error\" role=\"alert\">A reason (1 to {AdminOperations.ReasonLengthMax} characters) is required; it goes to the audit trail.</p>"), StatusCodes.Status400BadRequest);
            }
            if (form["confirm"] != "yes")
            {
                return ConsolePages.Confirm(http, "Reset the circuit breaker",
                    Html.Of($"<p>Refunds held back by the breaker will be asked for again at once. Reason: <q>{reason}</q></p>"), "/console/breaker/reset", [("reason", reason)], "/console/breaker");
            }
            await ops.ResetBreakerAsync(http.KeyId(), reason);
            return Results.Redirect("/console/breaker?done=reset", permanent: false);
        }).WithMetadata(new AdminActionMetadata(AdminOperations.ResetBreaker));
    }

    private static IResult Render(HttpContext http, CircuitBreakerView b, Markup? message, int status) => ConsolePages.Page(http, "Circuit breaker", Html.Of($"""
        <h1>Circuit breaker</h1>
        {message ?? Markup.Empty}
        {Summary(b)}
        <h2>Reset</h2>
        <p>A reset empties the window and closes the breaker: refunds waiting for a permit get one at their next request.</p>
        <form method="post" action="/console/breaker/reset" class="action">
          {ConsolePages.Token(http)}
          <label for="reset-reason">Reason</label>
          <input id="reset-reason" name="reason" required maxlength="{AdminOperations.ReasonLengthMax}">
          <button type="submit">Reset the breaker…</button>
        </form>
        """), status);
}

/// <summary>Reconciliation: run a day, read a day's report and its findings.</summary>
public static class ReconciliationPage
{
    public static void Map(RouteGroupBuilder pages)
    {
        pages.MapGet("/reconciliation", async (HttpContext http, IEscrowStore store, AdminOperations ops, string? date) =>
        {
            var error = (Markup?)null;
            var day = ops.Yesterday;
            if (!string.IsNullOrEmpty(date) && !DateOnly.TryParseExact(date, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out day))
            {
                error = Html.Of($"<p class=\"error\" role=\"alert\">The date must be a day (yyyy-MM-dd).</p>");
                day = ops.Yesterday;
            }
            return await RenderAsync(http, store, day, error, StatusCodes.Status200OK);
        });
        pages.MapPost("/reconciliation", async (HttpContext http, IEscrowStore store, AdminOperations ops) =>
        {
            var form = await http.Request.ReadFormAsync();
            if (!DateOnly.TryParseExact(form["date"].ToString(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
            {
                return await RenderAsync(http, store, ops.Yesterday, Html.Of($"<p class=\"error\" role=\"alert\">The date must be a day (yyyy-MM-dd).</p>"), StatusCodes.Status400BadRequest);
            }
            if (ops.DayError(day) is { } dayError)
            {
                return await RenderAsync(http, store, ops.Yesterday, Html.Of($"<p class=\"error\" role=\"alert\">{dayError}</p>"), StatusCodes.Status400BadRequest);
            }
            await ops.ReconcileAsync(day, http.KeyId());
            return Results.Redirect($"/console/reconciliation?date={day:yyyy-MM-dd}", permanent: false);
        }).WithMetadata(new AdminActionMetadata(AdminOperations.RunReconciliation));
    }

    private static async Task<IResult> RenderAsync(HttpContext http, IEscrowStore store, DateOnly day, Markup? message, int status)
    {
        var json = await store.GetReconciliationReportAsync(day);
        var report = json is null ? Html.Of($"<p>No report for {day:yyyy-MM-dd} yet.</p>") : Report(json);
        return ConsolePages.Page(http, "Reconciliation", Html.Of($"""
            <h1>Reconciliation</h1>
            {message ?? Markup.Empty}
            <form method="get" action="/console/reconciliation" class="filters">
              <label>Day <input type="date" name="date" value="{day:yyyy-MM-dd}"></label> <button type="submit">Read the report</button>
            </form>
            <form method="post" action="/console/reconciliation" class="filters">
              {ConsolePages.Token(http)}
              <label>Day <input type="date" name="date" value="{day:yyyy-MM-dd}" required></label> <button type="submit">Run reconciliation</button>
            </form>
            <h2>Report of {day:yyyy-MM-dd}</h2>
            {report}
            """), status);
    }

    private static Markup Report(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        string S(JsonElement e, string name) => e.TryGetProperty(name, out var p) ? p.ToString() : "";
        IEnumerable<JsonElement> A(string name) => root.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.Array ? p.EnumerateArray().ToList() : [];
        var findings = A("findings").ToList();
        return Html.Of($"""
            <p>Generated {S(root, "generatedAt")} by {S(root, "triggeredBy")}: {S(root, "escrowsChecked")} escrows and {S(root, "paymentIntentsChecked")} PaymentIntents checked.</p>
            <h3>Findings</h3>
            {(findings.Count == 0 ? Html.Of($"<p data-testid=\"no-findings\">No findings.</p>") : Html.Of($"<table><thead><tr><th scope=\"col\">Kind</th><th scope=\"col\">Escrow</th><th scope=\"col\">Detail</th></tr></thead><tbody>{findings.Select(f => Html.Of($"<tr><td>{S(f, "kind")}</td><td>{(S(f, "escrowId") is { Length: > 0 } e ? Html.Of($"<a href=\"/console/escrows/{e}\">{e}</a>") : Markup.Empty)}</td><td>{S(f, "detail")}</td></tr>"))}</tbody></table>"))}
            <h3>Counts</h3>
            <table><thead><tr><th scope="col">Status</th><th scope="col">Currency</th><th scope="col" class="num">Escrows</th><th scope="col" class="num">Amount (minor)</th></tr></thead>
            <tbody>{A("counts").Select(c => Html.Of($"<tr><td>{S(c, "status")}</td><td>{S(c, "currency")}</td><td class=\"num\">{S(c, "count")}</td><td class=\"num\">{S(c, "amountMinor")}</td></tr>"))}</tbody></table>
            <h3>Issues</h3>
            <ul>{A("issues").Select(i => Html.Of($"<li>{S(i, "kind")}: {S(i, "count")} ({S(i, "detail")})</li>"))}</ul>
            """);
    }
}
