using Escrow.Api.Admin;
using Escrow.Grains.Alerts;

namespace Escrow.Api.Endpoints;

public sealed record EraseBody([property: System.ComponentModel.DataAnnotations.Required, System.ComponentModel.Description("The person's e-mail address.")] string? Email);

/// <param name="Escrows">The escrows whose texts and sender address were erased.</param>
public sealed record ErasureResponse(IReadOnlyList<Guid> Escrows, int EmailLogRows, int InboundMessageRows, int AlertRows, int AuditRows);

public sealed record ReasonBody([property: System.ComponentModel.DataAnnotations.StringLength(1000), System.ComponentModel.Description("Why; kept in the audit trail.")] string? Reason = null);

/// <summary>Operators never need SQL: every action is an audited call with an admin key.</summary>
public static class AdminEndpoints
{
    public const int ListLimitMax = 200;

    public static void MapAdmin(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/admin").WithTags("Admin").RequireApiKey(ApiRole.Admin);
        admin.MapGet("/circuit-breaker", async (IGrainFactory grains) => TypedResults.Ok(await grains.GetGrain<ICircuitBreakerGrain>(0).GetAsync()))
            .Describe("getCircuitBreaker", "Read the refund circuit breaker", "Its state and what the current window has used of its refund count and amount caps.")
            .Problems(StatusCodes.Status503ServiceUnavailable);
        admin.MapPost("/circuit-breaker/reset", ResetBreakerAsync).WithMetadata(new AdminActionMetadata(AdminOperations.ResetBreaker))
            .Describe("resetCircuitBreaker", "Reset the refund circuit breaker", "Closes the breaker and starts a new window. Audited; the reason is optional.")
            .JsonBody(ApiExamples.Reason, optional: true)
            .Produces<CircuitBreakerView>()
            .Problems(StatusCodes.Status503ServiceUnavailable);
        admin.MapGet("/escrows", ListEscrowsAsync)
            .Describe("listEscrows", "List escrows by status, recipient or stuck",
                "Newest first, a page at a time (`limit` 1 to 200, default 50; pass `next` back as `after`). "
                + "`status` is a snake_case status name accepted in any case; `stuck` lists escrows too long in a status (the `Monitor:*StuckAfter` thresholds).")
            .Produces<EscrowPage>()
            .Problems(StatusCodes.Status400BadRequest, StatusCodes.Status503ServiceUnavailable);
        foreach (var kind in Enum.GetValues<OperatorActionKind>())
        {
            admin.MapPost($"/escrows/{{id}}/{Segment(kind)}", (string id, HttpRequest r, AdminOperations ops) => OperateAsync(id, kind, r, ops))
                .WithMetadata(new AdminActionMetadata(AdminOperations.AuditAction(kind)))
                .Describe(OperationId(kind), $"Force an escrow action: {Segment(kind).Replace('-', ' ')}",
                    "Runs the operator's action through the escrow's state machine: a state that does not allow it answers 409 with the rule's name. "
                    + "Audited; a release or a refund needs a reason.")
                .JsonBody(ApiExamples.Reason, optional: kind is not (OperatorActionKind.Release or OperatorActionKind.Refund))
                .Produces<EscrowResponse>()
                .Problems(StatusCodes.Status404NotFound, StatusCodes.Status409Conflict, StatusCodes.Status503ServiceUnavailable);
        }
        admin.MapPost("/reconciliation", ReconcileAsync).WithMetadata(new AdminActionMetadata(AdminOperations.RunReconciliation))
            .Describe("runReconciliation", "Reconcile one UTC day", "Checks escrows, the ledger and Stripe against each other for `date` (yyyy-MM-dd, default yesterday), stores the report and alerts per finding.")
            .Produces<ReconciliationReport>()
            .Problems(StatusCodes.Status400BadRequest, StatusCodes.Status503ServiceUnavailable);
        admin.MapGet("/reconciliation/{date}", GetReportAsync)
            .Describe("getReconciliationReport", "Read a day's reconciliation report", "The stored report of a UTC day (yyyy-MM-dd).")
            .Produces<ReconciliationReport>()
            .Problems(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound, StatusCodes.Status503ServiceUnavailable);
        admin.MapGet("/alerts", ListAlertsAsync)
            .Describe("listAlerts", "List alerts", "Newest first; `open=true` for the unacknowledged ones only; `limit` 1 to 200, default 100.")
            .Produces<AlertList>()
            .Problems(StatusCodes.Status400BadRequest, StatusCodes.Status503ServiceUnavailable);
        admin.MapGet("/alerts/deliveries", ListDeliveriesAsync)
            .Describe("listAlertDeliveries", "List alert deliveries",
                "What was sent to the configured alert webhooks and e-mail address (`Alerts:*`), newest alert first: `state` "
                + "pending (with its next attempt), delivered or failed (given up), with the last error; `limit` 1 to 200, default 100.")
            .Produces<AlertDeliveryList>()
            .Problems(StatusCodes.Status400BadRequest, StatusCodes.Status503ServiceUnavailable);
        admin.MapGet("/audit", ListAuditAsync)
            .Describe("listAudit", "Read the audit trail",
                "Who (an API key's id, never the key) changed what, newest first: platform replies, recipient changes, onboarding links and every admin action. "
                + "Filters: `escrowId` (a uuid), `recipientId`, `since` (an ISO 8601 time: rows at or after it); `limit` 1 to 200, default 100.")
            .Produces<AuditList>()
            .Problems(StatusCodes.Status400BadRequest, StatusCodes.Status503ServiceUnavailable);
        admin.MapPost("/privacy/erase", EraseAsync).WithMetadata(new AdminActionMetadata(AdminOperations.ErasePersonalData))
            .Describe("erasePersonalData", "Erase a person's data",
                "Replaces the person's e-mail address, and the subjects and messages of their escrows, with `erased` wherever they are stored "
                + "(escrow state, e-mail log, inbound messages, alert and audit texts), keeping ids and amounts. 409 `escrow_open` (nothing erased) "
                + "while one of their escrows is not finished. Audited without the address.")
            .JsonBody(new EraseBody("someone@example.com"))
            .Produces<ErasureResponse>()
            .Problems(StatusCodes.Status400BadRequest, StatusCodes.Status409Conflict, StatusCodes.Status503ServiceUnavailable);
        admin.MapPost("/alerts/{id:long}/ack", AcknowledgeAsync).WithMetadata(new AdminActionMetadata(AdminOperations.AcknowledgeAlert))
            .Describe("acknowledgeAlert", "Acknowledge an alert", "Marks the alert as seen by the calling key. Audited.")
            .Produces(StatusCodes.Status204NoContent)
            .Problems(StatusCodes.Status404NotFound, StatusCodes.Status503ServiceUnavailable);
    }

    private static string OperationId(OperatorActionKind kind) => kind switch
    {
        OperatorActionKind.Release => "releaseEscrow",
        OperatorActionKind.Refund => "refundEscrow",
        OperatorActionKind.RetryTransfer => "retryEscrowTransfer",
        OperatorActionKind.ApproveRefund => "approveEscrowRefund",
        _ => "resolveEscrowDispute",
    };

    /// <summary>The route segment of an escrow action: release, refund, retry-transfer, approve-refund, resolve-dispute.</summary>
    public static string Segment(OperatorActionKind kind) => AdminOperations.AuditAction(kind)["escrow.".Length..].Replace('_', '-');

    private static async Task<IResult> ResetBreakerAsync(HttpRequest request, AdminOperations ops)
    {
        var (reason, error) = await ReadReasonAsync(request);
        if (error is not null)
        {
            return error;
        }
        if (reason is { Length: > AdminOperations.ReasonLengthMax })
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["reason"] = [$"At most {AdminOperations.ReasonLengthMax} characters."] });
        }
        return TypedResults.Ok(await ops.ResetBreakerAsync(request.HttpContext.Caller().KeyId, reason));
    }

    private static async Task<(string? Reason, IResult? Error)> ReadReasonAsync(HttpRequest request)
    {
        if (request.ContentLength is not > 0)
        {
            return (null, null);
        }
        var (body, error) = await JsonBody.ReadAsync<ReasonBody>(request);
        return body is null ? (null, error) : (body.Reason?.Trim(), null);
    }

    private static async Task<IResult> OperateAsync(string id, OperatorActionKind kind, HttpRequest request, AdminOperations ops)
    {
        if (!Guid.TryParse(id, out var escrowId))
        {
            return Problems.NotFound("No escrow has this id.");
        }
        var (reason, error) = await ReadReasonAsync(request);
        if (error is not null)
        {
            return error;
        }
        if (AdminOperations.ReasonError(kind, reason) is { } reasonError)
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["reason"] = [reasonError] });
        }
        var result = await ops.OperateAsync(escrowId, kind, reason, request.HttpContext.Caller().KeyId);
        return result.Accepted
            ? TypedResults.Ok(EscrowEndpoints.ToResponse(result.View!, includeSecrets: false, includeHistory: true))
            : Problems.Rejection(result.Rejection!, escrowId);
    }

    private static async Task<IResult> ListEscrowsAsync(string? status, string? recipientId, bool? stuck, int? limit, string? after, IEscrowStore store, TimeProvider clock, IOptions<MonitorOptions> monitor)
    {
        status = status?.ToLowerInvariant();
        if (status is not null && !EscrowStatusNames.TryParseWire(status, out _))
        {
            return Problems.BadRequest($"status must be one of {string.Join(", ", Enum.GetValues<EscrowStatus>().Select(s => s.ToWire()))}.");
        }
        if (limit is < 1 or > ListLimitMax)
        {
            return Problems.BadRequest($"limit must be 1..{ListLimitMax}.");
        }
        try
        {
            var page = await store.QueryEscrowsAsync(new EscrowQuery(status, recipientId, stuck ?? false, clock.GetUtcNow(), monitor.Value.Rules(), Limit: limit ?? 50, After: after));
            return TypedResults.Ok(new { items = page.Items, next = page.Next });
        }
        catch (ArgumentException)
        {
            return Problems.BadRequest("after is not a cursor returned by this endpoint.");
        }
    }

    private static async Task<IResult> ReconcileAsync(string? date, HttpContext http, AdminOperations ops)
    {
        var day = ops.Yesterday;
        if (date is not null && !DateOnly.TryParseExact(date, "yyyy-MM-dd", out day))
        {
            return Problems.BadRequest("date must be a UTC day as yyyy-MM-dd (default: yesterday).");
        }
        if (ops.DayError(day) is { } dayError)
        {
            return Problems.BadRequest(dayError);
        }
        var report = await ops.ReconcileAsync(day, http.Caller().KeyId);
        return Results.Text(Escrow.Grains.ReconciliationGrain.ToJson(report), "application/json");
    }

    private static async Task<IResult> GetReportAsync(string date, IEscrowStore store)
    {
        if (!DateOnly.TryParseExact(date, "yyyy-MM-dd", out var day))
        {
            return Problems.BadRequest("date must be a UTC day as yyyy-MM-dd.");
        }
        var report = await store.GetReconciliationReportAsync(day);
        return report is null ? Problems.NotFound($"No reconciliation report for {day:yyyy-MM-dd}; run one with POST /v1/admin/reconciliation?date={day:yyyy-MM-dd}.") : Results.Text(report, "application/json");
    }

    private static async Task<IResult> ListAlertsAsync(bool? open, int? limit, IEscrowStore store)
    {
        if (limit is < 1 or > ListLimitMax)
        {
            return Problems.BadRequest($"limit must be 1..{ListLimitMax}.");
        }
        var alerts = await store.ListAlertsAsync(open ?? false, limit ?? 100);
        return TypedResults.Ok(new { items = alerts });
    }

    private static async Task<IResult> ListDeliveriesAsync(string? state, int? limit, IAlertDeliveryStore deliveries)
    {
        if (limit is < 1 or > ListLimitMax)
        {
            return Problems.BadRequest($"limit must be 1..{ListLimitMax}.");
        }
        if (state is not (null or "pending" or "delivered" or "failed"))
        {
            return Problems.BadRequest("state must be pending, delivered or failed.");
        }
        return TypedResults.Ok(new AlertDeliveryList(await deliveries.ListAsync(state, limit ?? 100)));
    }

    private static async Task<IResult> ListAuditAsync(HttpRequest request, IEscrowStore store)
    {
        // Read as text, so that a malformed value is a 400 problem naming it rather than a binding failure.
        var errors = new Dictionary<string, string[]>();
        string? Param(string name) => request.Query[name] is { Count: > 0 } v ? v.ToString() : null;
        Guid? escrowId = null;
        if (Param("escrowId") is { } e)
        {
            if (Guid.TryParse(e, out var parsed))
            {
                escrowId = parsed;
            }
            else
            {
                errors["escrowId"] = ["An escrow id (a uuid)."];
            }
        }
        var recipientId = Param("recipientId");
        if (recipientId is not null && !RecipientEndpoints.IsValidId(recipientId))
        {
            errors["recipientId"] = ["A recipient id: 1 to 64 letters, digits, '-' or '_'."];
        }
        DateTimeOffset? since = null;
        if (Param("since") is { } t)
        {
            if (DateTimeOffset.TryParse(t, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at))
            {
                since = at;
            }
            else
            {
                errors["since"] = ["An ISO 8601 time, e.g. 2026-12-04T17:00:00Z."];
            }
        }
        var limit = 100;
        if (Param("limit") is { } l && (!int.TryParse(l, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out limit) || limit is < 1 or > ListLimitMax))
        {
            errors["limit"] = [$"A whole number, 1 to {ListLimitMax}."];
        }
        if (errors.Count > 0)
        {
            return Problems.Validation(errors);
        }
        var rows = await store.QueryAuditAsync(new AuditQuery(escrowId, recipientId, since, limit));
        return TypedResults.Ok(new AuditList([.. rows.Select(r => new AuditItem(r.Id, r.At, r.KeyId, r.Action, r.EscrowId, r.RecipientId, Detail(r)))]));
    }

    /// <summary>What the row says beyond who and what: the outcome and details, and the operator's reason.</summary>
    private static string? Detail(AuditEntry r) => (r.Details, r.Reason) switch
    {
        (null, null) => null,
        ({ } d, null) => d,
        (null, { } why) => $"reason: {why}",
        var (d, why) => $"{d}; reason: {why}",
    };

    private static async Task<IResult> AcknowledgeAsync(long id, HttpContext http, AdminOperations ops) =>
        await ops.AcknowledgeAlertAsync(id, http.Caller().KeyId) ? TypedResults.NoContent() : Problems.NotFound("No alert has this id.");

    private static async Task<IResult> EraseAsync(HttpRequest request, AdminOperations ops)
    {
        var (body, error) = await JsonBody.ReadAsync<EraseBody>(request);
        if (body is null)
        {
            return error!;
        }
        var email = body.Email?.Trim();
        if (!RecipientEndpoints.IsValidEmail(email))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["email"] = ["A valid e-mail address is required."] });
        }
        return ToResult(await ops.EraseAsync(email!, request.HttpContext.Caller().KeyId));
    }

    /// <summary>200 with what was erased, or 409 escrow_open naming the open escrows (nothing erased).</summary>
    public static IResult ToResult(ErasureOutcome outcome) => outcome.Refused
        ? Problems.Make(StatusCodes.Status409Conflict, "escrow_open",
            $"{outcome.Open.Count} of this person's escrows are not finished (or still have e-mails to send); nothing was erased. Ask again once they are.",
            type: "https://escrow.invalid/problems/escrow_open",
            extensions: new Dictionary<string, object?> { ["rejection"] = "escrow_open", ["escrows"] = outcome.Open })
        : TypedResults.Ok(new ErasureResponse(outcome.Erased, outcome.Rows!.EmailLog, outcome.Rows.InboundMessages, outcome.Rows.Alerts, outcome.Rows.Audit));
}
