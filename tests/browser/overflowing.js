() => {
  // What runs past its card: every element of a visible card whose box reaches past the
  // card's inner edges (its padding), and every card that reaches past the window.
  const name = (node) => node.tagName.toLowerCase() + (node.id ? `#${node.id}` : "")
    + (node.getAttribute("class") ? `.${node.getAttribute("class").split(" ").join(".")}` : "");
  const found = [];
  for (const card of document.querySelectorAll(".card")) {
    if (card.offsetParent === null) continue; // hidden
    const box = card.getBoundingClientRect();
    const style = getComputedStyle(card);
    const left = box.left + card.clientLeft + parseFloat(style.paddingLeft) - 1;
    const right = box.left + card.clientLeft + card.clientWidth - parseFloat(style.paddingRight) + 1;
    if (box.right > window.innerWidth + 1) found.push(`${card.id} ends at ${box.right}px`);
    for (const node of card.querySelectorAll("*")) {
      const inner = node.getBoundingClientRect();
      if (inner.width === 0 && inner.height === 0) continue;
      if (inner.left < left || inner.right > right) {
        found.push(`${card.id}: ${name(node)} spans ${Math.round(inner.left)}–${Math.round(inner.right)} px,`
          + ` the card ${Math.round(left)}–${Math.round(right)} px`);
      }
    }
  }
  return found;
}
