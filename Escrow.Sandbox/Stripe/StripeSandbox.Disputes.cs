namespace Escrow.Sandbox;

/// <summary>
/// Disputes (chargebacks), opened and closed by the test or the demo as a cardholder's bank would: each step emits
/// the event Stripe sends (charge.dispute.created, charge.dispute.closed), signed and delivered like the others.
/// </summary>
public sealed partial class StripeSandbox
{
    /// <summary>The cardholder disputes a captured charge: a dispute in <c>needs_response</c>; null when there is no such charge.</summary>
    /// <exception cref="InvalidOperationException">The charge is not captured, or is already disputed.</exception>
    public SandboxDispute? OpenDispute(string chargeId, string reason = "fraudulent")
    {
        lock (_gate)
        {
            if (!_charges.TryGetValue(chargeId, out var charge))
            {
                return null;
            }

            if (!charge.Captured || _disputes.Values.Any(d => d.Charge == chargeId))
            {
                throw new InvalidOperationException($"Charge {chargeId} is not captured or is already disputed.");
            }

            var dispute = new SandboxDispute
            {
                Id = NewId("dp"),
                Amount = charge.AmountCaptured - charge.AmountRefunded,
                Currency = charge.Currency,
                Charge = charge.Id,
                PaymentIntent = charge.PaymentIntent,
                Status = "needs_response",
                Reason = reason,
                Created = Now(),
            };
            _disputes[dispute.Id] = dispute;
            AddEvent("charge.dispute.created", dispute.Id, StripeJson.Of(dispute), null);
            return dispute;
        }
    }

    /// <summary>The bank decides: <c>won</c> (the platform keeps the money) or <c>lost</c>; null when there is no such dispute.</summary>
    /// <exception cref="InvalidOperationException">The dispute is already closed.</exception>
    public SandboxDispute? CloseDispute(string disputeId, bool won)
    {
        lock (_gate)
        {
            if (!_disputes.TryGetValue(disputeId, out var dispute))
            {
                return null;
            }

            if (dispute.Status is "won" or "lost")
            {
                throw new InvalidOperationException($"Dispute {disputeId} is already {dispute.Status}.");
            }

            dispute = dispute with { Status = won ? "won" : "lost" };
            _disputes[dispute.Id] = dispute;
            AddEvent("charge.dispute.closed", dispute.Id, StripeJson.Of(dispute), null);
            return dispute;
        }
    }
}
