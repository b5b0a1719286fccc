using Escrow.Api.Hosting;
using Escrow.Grains.Storage;

namespace Escrow.Api.Endpoints;

public sealed record ReasonBody(string? Reason);

/// <summary>Operators never need SQL: every action is an audited call with an admin key.</summary>
public static class AdminEndpoints
{
    public const int ListLimitMax = 200;

    public static void MapAdmin(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/admin").WithTags("Admin").RequireApiKey(ApiRole.Admin);
        admin.MapGet("/circuit-breaker", async (IGrainFactory grains) => TypedResults.Ok(await grains.GetGrain<ICircuitBreakerGrain>(0).GetAsync()));
        admin.MapPost("/circuit-breaker/reset", ResetBreakerAsync);
        admin.MapGet("/escrows", ListEscrowsAsync);
        admin.MapPost("/escrows/{id}/release", (string id, HttpRequest r, IGrainFactory g, IEscrowStore s, TimeProvider c) => OperateAsync(id, OperatorActionKind.Release, r, g, s, c));
        admin.MapPost("/escrows/{id}/refund", (string id, HttpRequest r, IGrainFactory g, IEscrowStore s, TimeProvider c) => OperateAsync(id, OperatorActionKind.Refund, r, g, s, c));
        admin.MapPost("/escrows/{id}/retry-transfer", (string id, HttpRequest r, IGrainFactory g, IEscrowStore s, TimeProvider c) => OperateAsync(id, OperatorActionKind.RetryTransfer, r, g, s, c));
        admin.MapPost("/escrows/{id}/approve-refund", (string id, HttpRequest r, IGrainFactory g, IEscrowStore s, TimeProvider c) => OperateAsync(id, OperatorActionKind.ApproveRefund, r, g, s, c));
        admin.MapPost("/escrows/{id}/resolve-dispute", (string id, HttpRequest r, IGrainFactory g, IEscrowStore s, TimeProvider c) => OperateAsync(id, OperatorActionKind.ResolveDispute, r, g, s, c));
        admin.MapPost("/reconciliation", ReconcileAsync);
        admin.MapGet("/reconciliation/{date}", GetReportAsync);
        admin.MapGet("/alerts", ListAlertsAsync);
        admin.MapPost("/alerts/{id:long}/ack", AcknowledgeAsync);
    }

    private static async Task<IResult> ResetBreakerAsync(HttpContext http, IGrainFactory grains, IEscrowStore store, TimeProvider clock)
    {
        var caller = http.Caller();
        var view = await grains.GetGrain<ICircuitBreakerGrain>(0).ResetAsync(caller.KeyId);
        await store.WriteAuditAsync(new AuditEntry(0, caller.KeyId, "circuit_breaker.reset", null, null, clock.GetUtcNow(), null));
        return TypedResults.Ok(view);
    }

    private static async Task<IResult> OperateAsync(string id, OperatorActionKind kind, HttpRequest request, IGrainFactory grains, IEscrowStore store, TimeProvider clock)
    {
        if (!Guid.TryParse(id, out var escrowId))
        {
            return Problems.NotFound("No escrow has this id.");
        }
        string? reason = null;
        if (request.ContentLength is > 0)
        {
            var (body, error) = await JsonBody.ReadAsync<ReasonBody>(request);
            if (body is null)
            {
                return error!;
            }
            reason = body.Reason?.Trim();
        }
        if (reason is { Length: > 1000 } || (kind is OperatorActionKind.Refund or OperatorActionKind.Release && string.IsNullOrWhiteSpace(reason)))
        {
            return Problems.Validation(new Dictionary<string, string[]> { ["reason"] = ["A reason (1 to 1000 characters) is required for a release or a refund; it goes to the audit trail."] });
        }
        var caller = request.HttpContext.Caller();
        var result = await grains.GetGrain<IEscrowGrain>(escrowId).OperateAsync(new OperatorAction(kind, reason ?? "", caller.KeyId));
        if (result.RejectionCode == "unknown_escrow")
        {
            return Problems.NotFound("No escrow has this id.");
        }
        var action = "escrow." + kind switch
        {
            OperatorActionKind.Release => "release",
            OperatorActionKind.Refund => "refund",
            OperatorActionKind.RetryTransfer => "retry_transfer",
            OperatorActionKind.ApproveRefund => "approve_refund",
            _ => "resolve_dispute",
        };
        await store.WriteAuditAsync(new AuditEntry(0, caller.KeyId, action, escrowId, reason, clock.GetUtcNow(), result.Accepted ? "accepted" : $"rejected:{result.RejectionCode}"));
        return result.Accepted
            ? TypedResults.Ok(EscrowEndpoints.ToResponse(result.View!, includeSecrets: false, includeHistory: true))
            : Problems.Rejection(result.RejectionCode!, result.RejectionMessage, escrowId);
    }

    private static async Task<IResult> ListEscrowsAsync(string? status, string? recipientId, bool? stuck, int? limit, string? after, IEscrowStore store, TimeProvider clock)
    {
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
            var page = await store.QueryEscrowsAsync(new EscrowQuery(status, recipientId, stuck ?? false, clock.GetUtcNow(), Limit: limit ?? 50, After: after));
            return TypedResults.Ok(new { items = page.Items, next = page.Next });
        }
        catch (ArgumentException)
        {
            return Problems.BadRequest("after is not a cursor returned by this endpoint.");
        }
    }

    private static async Task<IResult> ReconcileAsync(string? date, HttpContext http, IGrainFactory grains, IEscrowStore store, TimeProvider clock)
    {
        var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
        var day = today.AddDays(-1);
        if (date is not null && !DateOnly.TryParseExact(date, "yyyy-MM-dd", out day))
        {
            return Problems.BadRequest("date must be a UTC day as yyyy-MM-dd (default: yesterday).");
        }
        if (day > today)
        {
            return Problems.BadRequest("A day in the future cannot be reconciled.");
        }
        var caller = http.Caller();
        var report = await grains.GetGrain<IReconciliationGrain>(0).RunAsync(day, caller.KeyId);
        await store.WriteAuditAsync(new AuditEntry(0, caller.KeyId, "reconciliation.run", null, null, clock.GetUtcNow(), $"{day:yyyy-MM-dd}: {report.Findings.Length} findings"));
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

    private static async Task<IResult> AcknowledgeAsync(long id, HttpContext http, IEscrowStore store, TimeProvider clock)
    {
        var caller = http.Caller();
        if (!await store.AcknowledgeAlertAsync(id, caller.KeyId, clock.GetUtcNow()))
        {
            return Problems.NotFound("No alert has this id.");
        }
        await store.WriteAuditAsync(new AuditEntry(0, caller.KeyId, "alert.ack", null, null, clock.GetUtcNow(), $"alert {id}"));
        return TypedResults.NoContent();
    }
}
