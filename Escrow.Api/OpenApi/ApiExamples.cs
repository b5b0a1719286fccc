namespace Escrow.Api.OpenApi;

/// <summary>Example bodies shown in the OpenAPI document, and documentation-only shapes of bodies the handlers build inline.</summary>
public static class ApiExamples
{
    public static readonly PostmarkInbound PostmarkInbound = new(
        "7f3c2a1e-5b4d-4c1a-9e8f-0a1b2c3d4e5f", "Dr. Lee <dr.lee@example.com>", new PostmarkAddress("dr.lee@example.com", "Dr. Lee", null),
        "reply+3f1b0c@reply.example.com", [new PostmarkAddress("reply+3f1b0c@reply.example.com", null, "3f1b0c")], null, null,
        "reply+3f1b0c@reply.example.com", "3f1b0c", "Re: A question about my MRI", "No second opinion needed.\n\n> original message", "No second opinion needed.", null);

    public static readonly ReasonBody Reason = new("Recipient answered by phone; confirmed with the sender (ticket 4711).");
}

/// <summary>The open or all alerts, newest first.</summary>
public sealed record AlertList(IReadOnlyList<AlertRecord> Items);

/// <summary>One audit row: who (the key's id) did what, to which escrow or recipient.</summary>
public sealed record AuditItem(long Id, DateTimeOffset At, string KeyId, string Action, Guid? EscrowId, string? RecipientId, string? Detail);

public sealed record AuditList(IReadOnlyList<AuditItem> Items);

public sealed record AlertDeliveryList(IReadOnlyList<Escrow.Grains.Alerts.AlertDeliveryRecord> Items);
