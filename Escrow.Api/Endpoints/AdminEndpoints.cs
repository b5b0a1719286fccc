using Escrow.Api.Admin;
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
        admin.MapPost("/circuit-breaker/reset", ResetBreakerAsync).WithMetadata(new AdminActionMetadata(AdminOperations.ResetBreaker));
        admin.MapGet("/escrows", ListEscrowsAsync);
        foreach (var kind in Enum.GetValues<OperatorActionKind>())
        {
            admin.MapPost($"/escrows/{{id}}/{Segment(kind)}", (string id, HttpRequest r, AdminOperations ops) => OperateAsync(id, kind, r, ops))
                .WithMetadata(new AdminActionMetadata(AdminOperations.AuditAction(kind)));
        }
        admin.MapPost("/reconciliation", ReconcileAsync).WithMetadata(new AdminActionMetadata(AdminOperations.RunReconciliation));
        admin.MapGet("/reconciliation/{date}", GetReportAsync);
        admin.MapGet("/alerts", ListAlertsAsync);
        admin.MapPost("/alerts/{id:long}/ack", AcknowledgeAsync).WithMetadata(new AdminActionMetadata(AdminOperations.AcknowledgeAlert));
    }

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
        if (result.RejectionCode == "unknown_escrow")
        {
            return Problems.NotFound("No escrow has this id.");
        }
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

    private static async Task<IResult> AcknowledgeAsync(long id, HttpContext http, AdminOperations ops) =>
        await ops.AcknowledgeAlertAsync(id, http.Caller().KeyId) ? TypedResults.NoContent() : Problems.NotFound("No alert has this id.");
}
