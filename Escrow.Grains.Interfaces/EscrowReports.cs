namespace Escrow;

/// <summary>Why an inbound reply was not passed on to its escrow although its token matched.</summary>
public enum RefusedReplyReason
{
    /// <summary>It came from an address that is not the recipient's.</summary>
    UnknownSender = 0,

    /// <summary>It came from the recipient's address, but the receiving server's checks (SPF, DKIM, DMARC) failed.</summary>
    NotAuthenticated = 1,
}

/// <summary>An inbound reply to the escrow that was not passed on; the escrow alerts an operator, who may release it.</summary>
/// <param name="Why">What the receiving server's checks said, for <see cref="RefusedReplyReason.NotAuthenticated"/>.</param>
[GenerateSerializer, Immutable, Alias("escrow.refused-reply.v1")]
public sealed record RefusedReply(
    [property: Id(0)] string MessageId,
    [property: Id(1)] RefusedReplyReason Reason,
    [property: Id(2)] string? Why = null);

/// <summary>An e-mail of the escrow bounced (Postmark's bounce webhook). <paramref name="Tag"/> names the e-mail.</summary>
[GenerateSerializer, Immutable, Alias("escrow.bounced-email.v1")]
public sealed record BouncedEmail(
    [property: Id(0)] string Tag,
    [property: Id(1)] string To,
    [property: Id(2)] string Error);
