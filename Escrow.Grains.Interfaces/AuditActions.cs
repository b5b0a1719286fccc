namespace Escrow;

/// <summary>The audit trail's action names: the same words whichever way (API, console, grain) an action came.</summary>
public static class AuditActions
{
    public const string Reply = "escrow.reply";
    public const string RecipientUpsert = "recipient.upsert";
    public const string OnboardingLink = "recipient.onboarding_link";
    public const string ResetBreaker = "circuit_breaker.reset";
    public const string RunReconciliation = "reconciliation.run";
    public const string AcknowledgeAlert = "alert.ack";

    public static string Operator(OperatorActionKind kind) => "escrow." + kind switch
    {
        OperatorActionKind.Release => "release",
        OperatorActionKind.Refund => "refund",
        OperatorActionKind.RetryTransfer => "retry_transfer",
        OperatorActionKind.ApproveRefund => "approve_refund",
        OperatorActionKind.ResolveDispute => "resolve_dispute",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}
